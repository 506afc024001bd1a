"""The job queue: enqueue, claim with a lease, extend, finish."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from gui_recorder.db import Database
from gui_recorder.db.models import Job
from gui_recorder.errors import DatabaseError
from gui_recorder.vocabulary import JobKind, JobState

KINDS = tuple(JobKind)
MAX_ATTEMPTS = 3


def enqueue_all(db: Database, session_id: str) -> None:
    """A stored recording is worth rendering and indexing: queue every kind of work for it, durably."""
    for kind in KINDS:
        enqueue(db, kind, session_id)


def enqueue(db: Database, kind: str, session_id: str, *, again: bool = False) -> None:
    """Queue ``kind`` for a session once; ``again`` re-queues a finished job (e.g. a re-index)."""
    now = db.now()
    try:
        with db.session() as s:
            s.add(Job(kind=kind, session_id=session_id, state=JobState.QUEUED, attempts=0, created_at=now,
                      updated_at=now))
    except (IntegrityError, DatabaseError) as exc:
        # Database.session wraps the driver's errors: the duplicate is its cause (issue 19 found `again`
        # unreachable: the second enqueue of a session raised instead of re-queueing).
        if not isinstance(exc, IntegrityError) and not isinstance(exc.__cause__, IntegrityError):
            raise
        if again:
            with db.session() as s:
                s.execute(update(Job).where(Job.kind == kind, Job.session_id == session_id,
                                            Job.state.in_((JobState.DONE, JobState.FAILED)))
                          .values(state=JobState.QUEUED, attempts=0, updated_at=now, last_error=None))


def claim(db: Database, worker: str, lease_seconds: float, kinds: tuple[str, ...] = KINDS) -> Job | None:
    """Take the oldest job that is queued, or running under an expired lease (its worker died)."""
    now = db.now()
    # Queued, or leased by a worker that stopped renewing it (it died).
    claimable = or_(Job.state == JobState.QUEUED, (Job.state == JobState.RUNNING) & (Job.lease_until < now))
    with db.session() as s:
        candidates = s.scalars(
            select(Job.id).where(Job.kind.in_(kinds), Job.attempts < MAX_ATTEMPTS, claimable)
            .order_by(Job.id).limit(5)).all()
        for job_id in candidates:
            # Compare-and-set: of two workers racing for a job, one wins.
            won = s.execute(
                update(Job).where(Job.id == job_id, claimable)
                .values(state=JobState.RUNNING, worker=worker, attempts=Job.attempts + 1,
                        lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)).rowcount
            if won:
                s.flush()
                return s.get(Job, job_id)
    return None


def extend(db: Database, job_id: int, worker: str, lease_seconds: float) -> bool:
    now = db.now()
    with db.session() as s:
        return bool(s.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == JobState.RUNNING)
                              .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)).rowcount)


def finish(db: Database, job_id: int, worker: str, error: str | None, seconds: float) -> bool:
    """Record the outcome; False when it does not count (the lease lapsed and another worker took the job)."""
    now = db.now()
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.worker != worker:
            return False  # our lease expired and another worker took it: its result counts
        if error is None:
            job.state, job.last_error = JobState.DONE, None
        else:
            job.state = JobState.FAILED if job.attempts >= MAX_ATTEMPTS else JobState.QUEUED
            job.last_error = error[:2000]
        job.lease_until, job.updated_at, job.seconds = None, now, seconds
        return True


def queue_depth(db: Database) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)).all()
    return {f"{kind}.{state}": n for kind, state, n in rows}


def backlog(db: Database) -> tuple[int, int, float | None]:
    """(queued, running, age in seconds of the oldest queued job): how the gateway sees its workers."""
    now = db.now()
    with db.session() as s:
        queued = s.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.QUEUED)) or 0
        running = s.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)) or 0
        oldest = s.scalar(select(func.min(Job.created_at)).where(Job.state == JobState.QUEUED))
    return queued, running, (now - oldest).total_seconds() if oldest else None


def job_state(db: Database, kind: str, session_id: str) -> Job | None:
    with db.session() as s:
        return s.scalar(select(Job).where(Job.kind == kind, Job.session_id == session_id))
