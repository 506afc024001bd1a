"""The worker survives its tasks: crashes, hangs and errors end only the job, which is retried."""

from __future__ import annotations

import os
import time

import pytest

from gui_recorder.db import Database
from gui_recorder.errors import RenderError
from gui_recorder.settings import Settings
from gui_recorder.db import jobs
from gui_recorder.worker.runner import Context, Worker

# Each job runs in a child process of the worker (that is what survives a crash): real processes,
# and a hang waited out to its time limit, so not part of the fast unit layer.
pytestmark = pytest.mark.stack


def crash(ctx, session_id):
    os._exit(139)  # as a segfault in a native library would end the process


def hang(ctx, session_id):
    time.sleep(60)


def bad_recording(ctx, session_id):
    raise RenderError("the recording has no frame")


def fine(ctx, session_id):
    pass


def test_crash_hang_and_error_fail_the_job_not_the_worker(tmp_path):
    settings = Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s")
    db = Database(settings)
    db.create_all()
    ctx = Context(settings, db, None, None)
    jobs.enqueue(db, "render", "s1")
    jobs.enqueue(db, "index", "s1")
    assert Worker(ctx, {"render": crash}, lease_seconds=30).run_once().kind == "render"
    job = jobs.job_state(db, "render", "s1")
    assert job.state == "queued" and "died" in job.last_error and job.attempts == 1  # to be retried
    started = time.monotonic()
    assert Worker(ctx, {"index": hang}, lease_seconds=30, max_job_seconds=2).run_once().kind == "index"
    assert time.monotonic() - started < 10
    assert "timed out" in jobs.job_state(db, "index", "s1").last_error
    worker = Worker(ctx, {"render": bad_recording, "index": fine}, lease_seconds=30)
    for _ in range(3):
        worker.run_once()
    render = jobs.job_state(db, "render", "s1")
    assert render.state == "failed" and render.attempts == 3 and "RenderError" in render.last_error
    assert jobs.job_state(db, "index", "s1").state == "done"
