"""The worker loop: claim a job, keep its lease alive while it runs, record the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gui_recorder.db import Database
from gui_recorder.db.models import Job
from gui_recorder.errors import GuiRecorderError
from gui_recorder.settings import Settings
from gui_recorder.worker import jobs

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What every task gets: the settings, the database and the object stores."""

    settings: Settings
    db: Database
    hot: object  # ObjectStore, where outputs are written
    reader: object  # TieredStore, where recordings are read from either tier


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
                 lease_seconds: float = 60.0, poll_seconds: float = 1.0, periodic: list[Periodic] | None = None):
        self.ctx = context
        self.tasks = tasks
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.periodic = periodic or []

    def run_once(self) -> Job | None:
        """Run at most one job; returns it (None when the queue was empty)."""
        job = jobs.claim(self.ctx.db, self.name, self.lease_seconds, tuple(self.tasks))
        if job is None:
            return None
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(job.id, stop), daemon=True)
        heartbeat.start()
        started, error = time.monotonic(), None
        try:
            self.tasks[job.kind](self.ctx, job.session_id)
        except GuiRecorderError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a bad recording must not stop the worker
            log.exception("%s job for session %s crashed", job.kind, job.session_id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            stop.set()
            heartbeat.join()
        seconds = time.monotonic() - started
        jobs.finish(self.ctx.db, job.id, self.name, error, seconds)
        if error:
            log.warning("%s job for session %s failed (attempt %d): %s", job.kind, job.session_id, job.attempts,
                        error)
        else:
            log.info("%s job for session %s done in %.1f s", job.kind, job.session_id, seconds)
        return job

    def _heartbeat(self, job_id: int, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            if not jobs.extend(self.ctx.db, job_id, self.name, self.lease_seconds):
                log.warning("lost the lease of job %d", job_id)
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
        while not stop.is_set():
            self.run_periodic()
            try:
                job = self.run_once()
            except GuiRecorderError as exc:  # e.g. the database is briefly locked or down
                log.warning("worker cannot claim jobs: %s", exc)
                job = None
            if job is None:
                stop.wait(self.poll_seconds)
