"""/api/health sees the workers through their queue: a job waiting too long makes the gateway degraded."""

from __future__ import annotations

from gui_recorder.db import jobs
from gui_recorder.gateway.health import WORKER_LAG_SECONDS
from test_gateway_api import gw, template  # noqa: F401 - the in-process gateway fixtures


async def test_a_job_nobody_takes_is_reported(gw):  # noqa: F811
    admin = await gw.api("admin")
    before = (await admin.get("/api/health/details")).json()["components"]["workers"]
    assert before == {"status": "ok", "queued": 0, "running": 0, "oldest_queued_seconds": None}
    jobs.enqueue(gw.db, "render", "0f0f0f0f-0000-0000-0000-000000000000")
    gw.clock.advance(WORKER_LAG_SECONDS + 1)  # no worker runs here: the job just waits
    after = (await admin.get("/api/health/details")).json()
    assert after["components"]["workers"]["status"] == "degraded"
    assert after["components"]["workers"]["queued"] == 1
    assert after["components"]["workers"]["oldest_queued_seconds"] > WORKER_LAG_SECONDS
    assert after["status"] != "ok"
