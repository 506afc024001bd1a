"""Storage lifecycle through the gateway: real MinIO, real recordings, a controllable clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from conftest import drive_session, wait_for
from gui_recorder.storage import cold_store, hot_store
from gui_recorder.storage.tiering import Tiering
from gui_recorder.db import jobs
from gui_recorder.worker.lifecycle import run_lifecycle

pytestmark = pytest.mark.stack


def tiering_at(gateway, days: float) -> Tiering:
    settings = gateway.settings
    real_now = gateway.app.state.db.now
    return Tiering(hot_store(settings), cold_store(settings), clock=lambda: real_now() + timedelta(days=days))


def bucket_bytes(minio_client, bucket: str) -> tuple[int, int]:
    if not minio_client.bucket_exists(bucket):
        return 0, 0
    objects = list(minio_client.list_objects(bucket, recursive=True))
    return sum(o.size for o in objects), len(objects)


async def test_sessions_age_to_cold_then_expire_unless_held(gateway, worker, minio_client):
    kept, held = await asyncio.gather(drive_session(gateway, "demo-vnc", "echo aging\n", seconds=1),
                                      drive_session(gateway, "demo-vnc", "echo held\n", seconds=1))
    db, settings, index = gateway.app.state.db, gateway.settings, gateway.app.state.search_index
    # Rendered and indexed first: a session is not forgotten while a job writes its outputs.
    await asyncio.to_thread(wait_for, lambda: all(getattr(jobs.job_state(db, k, sid), "state", None) == "done"
                                                  for k in jobs.KINDS for sid in (kept, held)), 240, 1, "jobs")
    with gateway.api("admin") as admin:
        before = {sid: admin.get(f"/api/sessions/{sid}/recording").content for sid in (kept, held)}
        report = await asyncio.to_thread(run_lifecycle, db, tiering_at(gateway, 40), settings.hot_days,
                                         settings.retention_days, index, {kept, held})
        assert sorted(report.moved) == sorted([kept, held])
        for sid in (kept, held):
            row = admin.get(f"/api/sessions/{sid}").json()
            assert row["tier"] == "cold"
            assert admin.get(f"/api/sessions/{sid}/recording").content == before[sid], "plays from cold"
            assert not list(minio_client.list_objects(settings.hot_bucket, prefix=f"sessions/{sid}/"))
        assert admin.put(f"/api/sessions/{held}/legal-hold", json={"hold": True, "reason": "case 42"}).status_code == 200
        with gateway.api("auditor") as auditor:
            assert auditor.put(f"/api/sessions/{kept}/legal-hold", json={"hold": True}).status_code == 403
        report = await asyncio.to_thread(run_lifecycle, db, tiering_at(gateway, 400), settings.hot_days,
                                         settings.retention_days, index, {kept, held})
        assert report.deleted == [kept] and report.held == [held]
        assert admin.get(f"/api/sessions/{kept}/recording").status_code == 404
        assert admin.get(f"/api/sessions/{kept}").json()["tier"] == "deleted"
        assert admin.get(f"/api/sessions/{kept}/text").json()["count"] == 0, "its text is forgotten too"
        assert admin.get(f"/api/sessions/{held}/text").json()["count"] > 0
        assert admin.get(f"/api/sessions/{held}/recording").content == before[held]
        actions = {(e["action"], e["target"]) for e in admin.get("/api/audit", params={"limit": 100}).json()}
        assert ("storage.delete", kept) in actions and ("session.legal_hold", held) in actions


async def test_dashboard_figures_equal_bytes_in_minio(gateway, minio_client):
    await drive_session(gateway, "demo-vnc", "echo capacity\n", seconds=1)
    with gateway.api("operator") as ops:
        report = ops.get("/api/ops/storage").raise_for_status().json()
    hot = bucket_bytes(minio_client, gateway.settings.hot_bucket)
    cold = bucket_bytes(minio_client, gateway.settings.cold_bucket)
    assert (report["tiers"]["hot"]["bytes"], report["tiers"]["hot"]["objects"]) == hot
    assert (report["tiers"]["cold"]["bytes"], report["tiers"]["cold"]["objects"]) == cold
    assert hot[0] > 0
    assert report["coverage"]["complete"] >= 1 and 0 < report["coverage"]["share"] <= 1
    assert "vnc" in report["bytes_per_session_hour"]["by_protocol"]
    assert "least-squares" in report["method"]
    with gateway.api("vendor") as vendor:
        assert vendor.get("/api/ops/storage").status_code == 403
    metrics = httpx.get(gateway.url + "metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith('gr_tier_bytes{tier="hot"}'))
    assert float(line.split()[-1]) == hot[0]
    for name in ("gr_active_sessions", "gr_spool_bytes", "gr_upload_lag_seconds", "gr_worker_queue",
                 "gr_recording_failures", "gr_tier_objects"):
        assert name in metrics
