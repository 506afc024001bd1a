"""A job queued twice is one job; ``again`` re-queues a finished one (a cold session's render on opening)."""

from __future__ import annotations

import secrets

from sqlalchemy import update

from gui_recorder.db import Database, jobs
from gui_recorder.db.models import Job
from gui_recorder.settings import Settings


def test_enqueue_twice_is_one_job_and_again_requeues_a_finished_one(tmp_path):
    db = Database(Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused"))
    try:
        db.create_all()
        jobs.enqueue(db, "render", "s1")
        jobs.enqueue(db, "render", "s1")  # the duplicate is absorbed, not a DatabaseError
        with db.session() as s:
            s.execute(update(Job).values(state="done"))
        jobs.enqueue(db, "render", "s1")
        assert jobs.job_state(db, "render", "s1").state == "done", "without again, a finished job stays finished"
        jobs.enqueue(db, "render", "s1", again=True)
        assert jobs.job_state(db, "render", "s1").state == "queued"
    finally:
        db.dispose()
