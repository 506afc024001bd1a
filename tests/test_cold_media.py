"""A cold session keeps only its recording: media dropped on the move, rendered again when an auditor opens it.

Real MinIO, the real worker, real guacd and Chromium; the lifecycle runs with a
clock 40 days ahead (the default tiers move sessions to cold at 30).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import run_async, wait_for
from support.pages import signed_in
from support.sessions import drive_session
from gui_recorder.db import jobs
from gui_recorder.storage import tier_stores
from gui_recorder.storage.tiering import Tiering
from gui_recorder.worker.lifecycle import run_lifecycle

pytestmark = [pytest.mark.stack, pytest.mark.browser]


def keys(minio_client, bucket: str, session_id: str) -> list[str]:
    if not minio_client.bucket_exists(bucket):
        return []
    return sorted(o.object_name for o in minio_client.list_objects(bucket, prefix=f"sessions/{session_id}/",
                                                                    recursive=True))


def test_a_cold_session_without_media_renders_again_in_the_player(gateway, worker, browser, minio_client):
    session_id = run_async(drive_session(gateway, "demo-vnc", "echo cold-media-check\n", seconds=2))
    services, settings = gateway.app.state.services, gateway.settings
    db = services.db
    wait_for(lambda: all(getattr(jobs.job_state(db, k, session_id), "state", None) == "done" for k in jobs.KINDS),
             240, 1, "render and index")
    hot, cold = settings.tiers[0].bucket, settings.tiers[1].bucket
    with gateway.api("admin") as admin:
        recording = admin.get(f"/api/sessions/{session_id}/recording").content
        info = admin.get(f"/api/sessions/{session_id}/video-info").json()
    media = [k for k in keys(minio_client, hot, session_id) if "/media/" in k]
    assert len(media) == 5 and info["media_bytes"] > 0

    real_now = db.now
    tiering = Tiering(tier_stores(settings), clock=lambda: real_now() + timedelta(days=40),
                      drop_media=settings.cold_drop_media)
    report = run_lifecycle(db, tiering, settings.retention_days, services.search_index, {session_id})
    assert report.moved == {session_id: "cold"}
    # video-info.json is not counted in media_bytes (it is written after them), hence >=.
    assert report.media_dropped[session_id] >= info["media_bytes"]
    assert keys(minio_client, hot, session_id) == []
    assert keys(minio_client, cold, session_id) and not [k for k in keys(minio_client, cold, session_id)
                                                         if "/media/" in k], "cold holds the recording only"
    with gateway.api("admin") as admin:
        row = admin.get(f"/api/sessions/{session_id}").json()
        assert row["tier"] == "cold" and row["video"]["media_dropped"]
        assert admin.get(f"/api/sessions/{session_id}/recording").content == recording, "the evidence is intact"

    context, page = signed_in(browser, gateway, "auditor")
    try:
        # Every status line the player shows, in order (it changes faster than a poll could see).
        page.add_init_script("""
            window.statuses = [];
            new MutationObserver(() => {
              const s = document.getElementById('player-status');
              if (s && s.textContent && window.statuses.at(-1) !== s.textContent) window.statuses.push(s.textContent);
            }).observe(document, { subtree: true, childList: true, characterData: true });
        """)
        page.goto(gateway.url + f"player.html?session={session_id}")
        page.locator("body[data-ready='true']").wait_for(timeout=180_000)
        shown = page.evaluate("() => [window.statuses, player.video.videoWidth, player.video.readyState]")
    finally:
        context.close()
    statuses, width, ready = shown
    assert any("render" in s.lower() for s in statuses), statuses
    assert width == info["width"] + (info["width"] & 1) and ready >= 1
    assert len([k for k in keys(minio_client, hot, session_id) if "/media/" in k]) == 5, "rendered again, in hot"
    with gateway.api("admin") as admin:
        again = admin.get(f"/api/sessions/{session_id}/video-info").json()
        assert again["duration_ms"] == info["duration_ms"]
        assert not admin.get(f"/api/sessions/{session_id}").json()["video"].get("media_dropped")

    # The media rendered again stays for `cold_rendered_media_days` after it was made (here 60, with
    # the clock 40 days ahead: it is "40 days old"), so the next review does not render it again ...
    def lifecycle(days_ahead: int, keep_days: float):
        tiering = Tiering(tier_stores(settings), clock=lambda: real_now() + timedelta(days=days_ahead),
                          drop_media=True, rendered_media_days=keep_days)
        return run_lifecycle(db, tiering, settings.retention_days, services.search_index, {session_id})

    kept = lifecycle(40, 60)
    assert kept.moved == {} and kept.media_dropped == {}
    assert len([k for k in keys(minio_client, hot, session_id) if "/media/" in k]) == 5, "kept for now"
    # ... and a pass after that drops it again.
    later = lifecycle(80, 60)
    # The media rendered on demand (its own, faster profile: not the first render's size).
    assert later.media_dropped.get(session_id, 0) >= again["media_bytes"] > 0
    assert keys(minio_client, hot, session_id) == []
    with gateway.api("admin") as admin:
        assert admin.get(f"/api/sessions/{session_id}").json()["video"]["media_dropped"]
        assert admin.get(f"/api/sessions/{session_id}/recording").content == recording
