"""Storage lifecycle through the gateway: real MinIO, real recordings, a controllable clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from conftest import wait_for
from support.sessions import drive_session
from gui_recorder.storage import tier_stores
from gui_recorder.storage.tiering import Tiering
from gui_recorder.db import jobs
from gui_recorder.worker.lifecycle import run_lifecycle

pytestmark = pytest.mark.stack


def tiering_at(gateway, days: float) -> Tiering:
    settings = gateway.settings
    real_now = gateway.app.state.services.db.now
    return Tiering(tier_stores(settings), clock=lambda: real_now() + timedelta(days=days))


def bucket_bytes(minio_client, bucket: str) -> tuple[int, int]:
    if not minio_client.bucket_exists(bucket):
        return 0, 0
    objects = list(minio_client.list_objects(bucket, recursive=True))
    return sum(o.size for o in objects), len(objects)


async def test_sessions_age_to_cold_then_expire_unless_held(gateway, worker, minio_client):
    # One after the other: two VNC clients connecting to x11vnc at the same instant once left one of them
    # without a first frame for 30 s on a loaded CI machine, and concurrency is not what this test is about.
    kept = await drive_session(gateway, "demo-vnc", "echo aging\n", seconds=1)
    held = await drive_session(gateway, "demo-vnc", "echo held\n", seconds=1)
    db, settings, index = gateway.app.state.services.db, gateway.settings, gateway.app.state.services.search_index
    # Rendered and indexed first: a session is not forgotten while a job writes its outputs.
    await asyncio.to_thread(wait_for, lambda: all(getattr(jobs.job_state(db, k, sid), "state", None) == "done"
                                                  for k in jobs.KINDS for sid in (kept, held)), 240, 1, "jobs")
    with gateway.api("admin") as admin:
        before = {sid: admin.get(f"/api/sessions/{sid}/recording").content for sid in (kept, held)}
        report = await asyncio.to_thread(run_lifecycle, db, tiering_at(gateway, 40),
                                         settings.retention_days, index, {kept, held})
        assert sorted(report.moved) == sorted([kept, held])
        for sid in (kept, held):
            row = admin.get(f"/api/sessions/{sid}").json()
            assert row["tier"] == "cold"
            assert admin.get(f"/api/sessions/{sid}/recording").content == before[sid], "plays from cold"
            assert not list(minio_client.list_objects(settings.tiers[0].bucket, prefix=f"sessions/{sid}/"))
        assert admin.put(f"/api/sessions/{held}/legal-hold", json={"hold": True, "reason": "case 42"}).status_code == 200
        with gateway.api("auditor") as auditor:
            assert auditor.put(f"/api/sessions/{kept}/legal-hold", json={"hold": True}).status_code == 403
        report = await asyncio.to_thread(run_lifecycle, db, tiering_at(gateway, 400),
                                         settings.retention_days, index, {kept, held})
        assert report.deleted == [kept] and report.held == [held]
        assert admin.get(f"/api/sessions/{kept}/recording").status_code == 404
        assert admin.get(f"/api/sessions/{kept}").json()["tier"] == "deleted"
        assert admin.get(f"/api/sessions/{kept}/text").json()["count"] == 0, "its text is forgotten too"
        assert admin.get(f"/api/sessions/{held}/text").json()["count"] > 0
        assert admin.get(f"/api/sessions/{held}/recording").content == before[held]
        actions = {(e["action"], e["target"]) for e in admin.get("/api/audit", params={"limit": 100}).json()}
        assert ("storage.delete", kept) in actions and ("session.legal_hold", held) in actions
        assert ("storage.move_cold", held) in actions, "the move is audited with the tier it went to"


async def test_dashboard_figures_equal_bytes_in_minio(gateway, minio_client):
    await drive_session(gateway, "demo-vnc", "echo capacity\n", seconds=1)
    with gateway.api("operator") as ops:
        report = ops.get("/api/ops/storage").raise_for_status().json()
    hot = bucket_bytes(minio_client, gateway.settings.tiers[0].bucket)
    cold = bucket_bytes(minio_client, gateway.settings.tiers[1].bucket)
    assert (report["tiers"]["hot"]["bytes"], report["tiers"]["hot"]["objects"]) == hot
    assert (report["tiers"]["cold"]["bytes"], report["tiers"]["cold"]["objects"]) == cold
    assert list(report["tiers"]) == [t.name for t in gateway.settings.tiers], "every configured tier, in order"
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


async def test_a_three_tier_gateway_reports_and_labels_every_tier(stack, tmp_path, minio_client):
    """GUI_RECORDER_TIERS with three tiers: buckets made at start-up, /api/ops/storage and /metrics list
    hot, warm, cold in order, with bytes as MinIO counts them and each tier's configured capacity."""
    import secrets

    from gui_recorder.gateway import accounts
    from gui_recorder.gateway.app import create_app
    from gui_recorder.settings import Settings
    from gui_recorder.storage.keys import segment_key

    tag = secrets.token_hex(4)
    tiers = [{"name": "hot", "bucket": f"three-hot-{tag}", "capacity_bytes": 10**9},
             {"name": "warm", "bucket": f"three-warm-{tag}", "after_days": 30, "capacity_bytes": 10**10},
             {"name": "cold", "bucket": f"three-cold-{tag}", "after_days": 180}]
    password = secrets.token_urlsafe(18)
    settings = Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_endpoint=stack.minio.endpoint,
                        s3_access_key=stack.minio.access_key, s3_secret_key=stack.minio.secret_key, tiers=tiers,
                        admin_password=secrets.token_urlsafe(18))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert all(minio_client.bucket_exists(t["bucket"]) for t in tiers), "every tier's bucket at start-up"
        services = app.state.services
        accounts.ensure_user(services.db, "ops", password, "operator")
        for index, tier in enumerate(services.tiering.tiers):  # 1, 2 and 3 objects of different sizes
            for n in range(index + 1):
                tier.store.put_bytes(segment_key(f"s{index}", n + 1), b"x" * (1000 * (index + 1)))
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 41000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            token = (await client.post("/api/auth/login", json={"username": "ops", "password": password})).json()
            headers = {"Authorization": f"Bearer {token['token']}"}
            report = (await client.get("/api/ops/storage", headers=headers)).raise_for_status().json()
            metrics = (await client.get("/metrics")).raise_for_status().text
    assert list(report["tiers"]) == ["hot", "warm", "cold"]
    for t in tiers:
        assert (report["tiers"][t["name"]]["bytes"], report["tiers"][t["name"]]["objects"]) == \
            bucket_bytes(minio_client, t["bucket"])
    assert report["tiers"]["warm"]["objects"] == 2 and report["tiers"]["cold"]["bytes"] == 9000
    assert [report["tiers"][n]["capacity_bytes"] for n in ("hot", "warm", "cold")] == [10**9, 10**10, None]
    for name, figure in (("hot", 1000), ("warm", 4000), ("cold", 9000)):
        assert f'gr_tier_bytes{{tier="{name}"}} {float(figure)}' in metrics
    assert 'gr_tier_capacity_bytes{tier="warm"} 1e+10' in metrics
    assert 'gr_tier_capacity_bytes{tier="cold"} 0.0' in metrics
