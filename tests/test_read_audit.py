"""Every read of a session leaves an audit event: Range requests too, folded per viewer and window.

The real gateway application in-process (its clock injected, so the window is
crossed by moving time, not by sleeping) in front of the real MinIO of the
``stack`` fixture, in buckets of its own. The render worker's outputs (video,
thumbnails, sprite, poster, video facts) and an uploaded recording are put in
place by the test: rendering is proved in test_video_pipeline.py; what is
under test here is the gateway's reads and the trail they leave.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select, text

from gui_recorder.db import User
from gui_recorder.gateway import accounts, audit, connections
from gui_recorder.sessions import rows
from gui_recorder.gateway.app import create_app
from gui_recorder.storage.keys import manifest_key, media_key, segment_key
from gui_recorder.settings import Settings
from gui_recorder.storage import write_store
from support.inprocess import Clock, sign_in_all

pytestmark = pytest.mark.stack
WINDOW = 300
VIDEO = secrets.token_bytes(200_000)
RECORDING = b"4.size,1.0,4.1024,3.768;4.sync,4.1000;"
USERS = ("auditor", "admin", "vendor")


def _jpeg(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
async def gw(stack, tmp_path_factory):
    tag = secrets.token_hex(4)
    passwords = {name: secrets.token_urlsafe(18) for name in USERS}
    settings = Settings(var_dir=tmp_path_factory.mktemp("read-audit"), secret_key=secrets.token_urlsafe(32),
                        admin_password=passwords["admin"], s3_endpoint=stack.minio.endpoint,
                        s3_access_key=stack.minio.access_key, s3_secret_key=stack.minio.secret_key,
                        hot_bucket=f"audit-hot-{tag}", cold_bucket=f"audit-cold-{tag}",
                        audit_view_window_seconds=WINDOW)
    clock = Clock(datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC))
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        for name in USERS:
            accounts.ensure_user(app.state.services.db, name, passwords[name], name)
        connections.ensure_connection(app.state.services.db, settings, connections.ConnectionIn(
            id="audited", name="Audited", protocol="vnc", host="10.8.8.8", port=5900, allowed_roles=["vendor"]))
        transport = httpx.ASGITransport(app=app, client=("198.51.100.33", 41000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            tokens = {name: {"Authorization": f"Bearer {token}"}
                      for name, token in (await sign_in_all(client, passwords)).items()}
            yield app, client, tokens, clock, write_store(settings)


def new_session(gw) -> str:
    """An ended session of the vendor, with its recording uploaded and its media rendered."""
    app, _, _, _, store = gw
    db = app.state.services.db
    with db.session() as s:
        vendor = s.scalar(select(User).where(User.username == "vendor"))
    row = rows.create_session(db, vendor, connections.get_connection(db, "audited"), "203.0.113.1", None)
    rows.end_session(db, row.id, "ended", "user disconnected", 10, 10, None)
    sid = row.id
    store.put_bytes(segment_key(sid, 0), RECORDING)
    store.put_json(manifest_key(sid), {"complete": True, "bytes": len(RECORDING), "segments": [
        {"index": 0, "key": segment_key(sid, 0), "size": len(RECORDING),
         "sha256": hashlib.sha256(RECORDING).hexdigest()}]})
    store.put_bytes(media_key(sid, "video.webm"), VIDEO, "video/webm")
    store.put_bytes(media_key(sid, "sprite.jpg"), _jpeg(64, 32), "image/jpeg")
    store.put_bytes(media_key(sid, "poster.jpg"), _jpeg(32, 16), "image/jpeg")
    store.put_json(media_key(sid, "thumbnails.json"), {"items": [{"t_ms": 0, "x": 0, "y": 0, "w": 32, "h": 32},
                                                                 {"t_ms": 5000, "x": 32, "y": 0, "w": 32, "h": 32}]})
    store.put_json(media_key(sid, "video-info.json"), {"duration_ms": 10_000, "width": 1024, "height": 768})
    return sid


def events(gw, sid: str | None, action: str, username: str = "auditor") -> list[dict]:
    return [e for e in audit.list_events(gw[0].state.services.db, action, username, None, 10_000) if e["target"] == sid]


async def test_every_read_of_a_session_leaves_its_event(gw):
    _, client, tokens, _, _ = gw
    sid = new_session(gw)
    base = f"/api/sessions/{sid}"
    reads = [("", "session.view"), ("/recording", "recording.view"), ("/video-info", "video_info.view"),
             ("/video", "video.view"), ("/thumbnails", "thumbnails.view"), ("/thumbnails?t=4000", "thumbnails.view"),
             ("/thumbnails/sprite.jpg", "sprite.view"), ("/poster", "poster.view"), ("/text", "text.view"),
             ("/export", "session.export")]
    for suffix, action in reads:
        resp = await client.get(base + suffix, headers={**tokens["auditor"], "Range": "bytes=0-99"}
                                if suffix == "/video" else tokens["auditor"])
        assert resp.status_code in (200, 206), (suffix, resp.status_code, resp.text[:200])
        got = events(gw, sid, action)
        assert len(got) == 1, (suffix, action, got)
        assert got[0]["client_addr"] == "198.51.100.33"
    assert (await client.get(base + "/recording", headers=tokens["auditor"])).content == RECORDING
    crop = await client.get(base + "/thumbnails", params={"t": 4900}, headers=tokens["auditor"])
    assert crop.headers["x-thumbnail-time"] == "5000"
    # Searching is reading every session's text: each query is an event, with the query.
    for q in ("password", "password"):
        assert (await client.get("/api/search", params={"q": q}, headers=tokens["auditor"])).status_code == 200
    searches = events(gw, None, "search")
    assert [e["detail"]["q"] for e in searches[:2]] == ["password", "password"]


async def test_range_requests_are_one_view_per_viewer_and_window(gw):
    _, client, tokens, clock, _ = gw
    sid = new_session(gw)
    url = f"/api/sessions/{sid}/video"

    async def chunk(start: int, who: str = "auditor") -> httpx.Response:
        resp = await client.get(url, headers={**tokens[who], "Range": f"bytes={start}-{start + 1023}"})
        assert resp.status_code == 206 and resp.content == VIDEO[start:start + 1024], resp.status_code
        return resp

    await chunk(0)
    assert len(events(gw, sid, "video.view")) == 1
    # What a <video> element does: many Range requests, some at once.
    await asyncio.gather(*(chunk(n * 4096) for n in range(1, 9)))
    whole = await client.get(url, headers=tokens["auditor"])
    assert whole.status_code == 200 and whole.content == VIDEO
    assert len(events(gw, sid, "video.view")) == 1, "one view, not one event per chunk"
    await chunk(0, "admin")
    assert len(events(gw, sid, "video.view", "admin")) == 1, "another viewer is another event"
    clock.advance(WINDOW - 1)
    await chunk(100_000)
    assert len(events(gw, sid, "video.view")) == 1
    clock.advance(1)
    await chunk(150_000)
    assert len(events(gw, sid, "video.view")) == 2, "a read after the window is a new view"


async def test_whole_copies_are_recorded_every_time(gw):
    _, client, tokens, _, _ = gw
    sid = new_session(gw)
    for _ in range(2):
        assert (await client.get(f"/api/sessions/{sid}/recording", headers=tokens["auditor"])).status_code == 200
        export = await client.get(f"/api/sessions/{sid}/export", headers=tokens["auditor"])
        assert export.status_code == 200 and export.content[:2] == b"PK"
    assert len(events(gw, sid, "recording.view")) == 2
    assert len(events(gw, sid, "session.export")) == 2


async def test_refused_reads_serve_nothing_and_leave_no_read_event(gw):
    _, client, tokens, _, _ = gw
    sid = new_session(gw)
    for suffix in ("/video", "/recording", "/text", "/export", "/poster"):
        resp = await client.get(f"/api/sessions/{sid}{suffix}", headers=tokens["vendor"])
        assert resp.status_code == 403 and resp.json()["error"] == "ForbiddenError", suffix
    assert [e["action"] for e in audit.list_events(gw[0].state.services.db, None, "vendor", None, 1000)
            if e["target"] == sid] == []
    # Its own row the vendor sees, and that read is on the trail too.
    assert (await client.get(f"/api/sessions/{sid}", headers=tokens["vendor"])).status_code == 200
    assert len(events(gw, sid, "session.view", "vendor")) == 1
    missing = await client.get("/api/sessions/no-such-session/video", headers=tokens["auditor"])
    assert missing.status_code == 404 and events(gw, "no-such-session", "video.view") == []


async def test_a_read_whose_event_cannot_be_written_is_refused(gw):
    app, client, tokens, clock, _ = gw
    sid = new_session(gw)
    clock.advance(WINDOW)  # nothing of this viewer is folded
    db = app.state.services.db
    with db.engine.begin() as conn:  # a real failure of the audit write: its table is gone
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        for suffix in ("/video", "/recording", "/export"):
            resp = await client.get(f"/api/sessions/{sid}{suffix}", headers=tokens["auditor"])
            assert resp.status_code == 503 and resp.json()["error"] == "DatabaseError", (suffix, resp.text)
            assert VIDEO[:64] not in resp.content and RECORDING not in resp.content
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    # The failed write was not remembered as recorded: the next read records its view.
    resp = await client.get(f"/api/sessions/{sid}/video", headers={**tokens["auditor"], "Range": "bytes=0-9"})
    assert resp.status_code == 206 and len(events(gw, sid, "video.view")) == 1
