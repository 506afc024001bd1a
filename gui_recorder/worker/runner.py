"""The worker loop: claim a job, keep its lease alive while it runs, record the outcome."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gui_recorder.db import Database
from gui_recorder.db.models import Job
from gui_recorder.errors import GuiRecorderError
from gui_recorder.settings import Settings
from gui_recorder.storage import StorageTier, tier_stores
from gui_recorder.storage.tiering import TieredStore
from gui_recorder.db import jobs
from gui_recorder import telemetry

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What every task gets: the settings, the database and the object stores."""

    settings: Settings
    db: Database
    hot: object  # ObjectStore of the first tier (tiers[0]), where outputs are written
    reader: object  # TieredStore, where recordings are read from whichever tier holds them
    # Every configured tier, in order: the lifecycle moves sessions between them.
    tiers: list[StorageTier] = field(default_factory=list)


Task = Callable[[Context, str], None]


@dataclass
class Periodic:
    """Work the worker does on a schedule (the storage lifecycle), between jobs."""

    name: str
    interval_seconds: float
    run: Callable[[Context], object]
    next_at: float = 0.0


class Worker:
    def __init__(self, context: Context, tasks: dict[str, Task], *, name: str | None = None,
                 lease_seconds: float = 60.0, poll_seconds: float = 1.0, periodic: list[Periodic] | None = None,
                 isolate: bool = True, max_job_seconds: float = 3600.0):
        self.ctx = context
        self.tasks = tasks
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.periodic = periodic or []
        self.isolate = isolate
        self.max_job_seconds = max_job_seconds

    def run_once(self) -> Job | None:
        """Run at most one job; returns it (None when the queue was empty)."""
        job = jobs.claim(self.ctx.db, self.name, self.lease_seconds, tuple(self.tasks))
        if job is None:
            return None
        started = time.monotonic()
        stop, lost = threading.Event(), threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(job.id, stop, lost), daemon=True)
        heartbeat.start()
        try:
            with telemetry.span(f"job.{job.kind}", session_id=job.session_id, attempt=job.attempts,
                                worker=self.name) as span:
                error = (self._run_isolated(job, lost) if self.isolate
                         else _run_task(self.tasks[job.kind], self.ctx, job))
                if error:
                    span.set_attribute("job.error", error[:500])
        finally:
            stop.set()
            heartbeat.join()
        seconds = time.monotonic() - started
        counted = jobs.finish(self.ctx.db, job.id, self.name, error, seconds)
        with telemetry.context.bound(session=job.session_id):  # the log line's session_id (issue 18)
            if not counted:
                # This worker stalled past its lease (a pause, a frozen VM) and another took the job over:
                # the other's run is the one that counts, whatever this one got to.
                log.warning("%s job for session %s was taken over by another worker; this run (%s) is "
                            "discarded", job.kind, job.session_id, error or "finished")
            elif error:
                log.warning("%s job for session %s failed (attempt %d): %s", job.kind, job.session_id,
                            job.attempts, error)
            else:
                log.info("%s job for session %s done in %.1f s", job.kind, job.session_id, seconds)
        return job

    def _run_isolated(self, job: Job, lost: threading.Event | None = None) -> str | None:
        """The task in a child process: a crash (a native library) or a hang ends only the child.

        Stopped as soon as the lease is lost (``lost``): another worker runs the job now, and two
        runs publishing the same outputs at once is what leases are there to prevent.
        """
        receiver, sender = _SPAWN.Pipe(duplex=False)
        child = _SPAWN.Process(target=_child, args=(self.tasks[job.kind], self.ctx.settings, job.kind,
                                                     job.session_id, sender), daemon=True)
        child.start()
        sender.close()
        deadline = time.monotonic() + self.max_job_seconds
        while child.is_alive() and time.monotonic() < deadline and not (lost and lost.is_set()):
            child.join(min(0.2, max(0.0, deadline - time.monotonic())))
        if child.is_alive():
            child.kill()
            child.join()
            if lost and lost.is_set():
                return "stopped: the lease was lost to another worker"
            return f"timed out after {self.max_job_seconds:.0f} s"
        try:
            outcome = receiver.recv() if receiver.poll() else "no result"
        except EOFError:  # the child died before it could say anything
            outcome = "no result"
        receiver.close()
        if child.exitcode != 0 and outcome in (None, "no result"):
            return f"the task process died (exit status {child.exitcode})"
        return outcome

    def _heartbeat(self, job_id: int, stop: threading.Event, lost: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            if not jobs.extend(self.ctx.db, job_id, self.name, self.lease_seconds):
                log.warning("lost the lease of job %d", job_id)
                lost.set()
                return

    def run_periodic(self) -> None:
        now = time.monotonic()
        for item in self.periodic:
            if now >= item.next_at:
                item.next_at = now + item.interval_seconds
                try:
                    item.run(self.ctx)
                except Exception:  # noqa: BLE001 - retried at the next interval
                    log.exception("periodic %s failed", item.name)

    def run_forever(self, stop: threading.Event) -> None:
        # Scheduled work (live text, the lifecycle) runs beside the jobs, not between them:
        # an hour-long render must not delay live search.
        def periodic() -> None:
            while not stop.wait(1.0):
                self.run_periodic()

        scheduler = threading.Thread(target=periodic, name="periodic", daemon=True)
        self.run_periodic()
        scheduler.start()
        while not stop.is_set():
            try:
                job = self.run_once()
            except GuiRecorderError as exc:  # e.g. the database is briefly locked or down
                log.warning("worker cannot claim jobs: %s", exc)
                job = None
            if job is None:
                stop.wait(self.poll_seconds)


# A fresh interpreter per job (not fork): the worker has threads, and a forked
# child could inherit a lock held by one of them.
_SPAWN = multiprocessing.get_context("spawn")


def build_context(settings: Settings) -> Context:
    db = Database(settings)
    tiers = tier_stores(settings)
    return Context(settings, db, tiers[0].store, TieredStore(tiers), tiers)


def _run_task(task: Task, ctx: Context, job: Job) -> str | None:
    try:
        task(ctx, job.session_id)
        return None
    except GuiRecorderError as exc:
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bad recording must not stop the worker
        log.exception("%s job for session %s crashed", job.kind, job.session_id)
        return f"{type(exc).__name__}: {exc}"


def _child(task: Task, settings: Settings, kind: str, session_id: str, sender) -> None:
    _die_with_parent()
    from gui_recorder.telemetry import logs

    logs.configure(settings, "worker")  # a spawned interpreter: the parent's logging is not inherited
    telemetry.bind(session=session_id)
    ctx = build_context(settings)
    try:
        sender.send(_run_task(task, ctx, Job(kind=kind, session_id=session_id)))
    finally:
        sender.close()
        ctx.db.dispose()


def _die_with_parent() -> None:
    """A killed worker must not leave its task running as an orphan (Linux PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() == 1:
        os._exit(1)
