"""One sink's delivery: a bounded queue, a thread, a spool on disk, retries with backoff.

``offer`` never blocks the caller (a request, the relay's session end): a full queue
drops the event and counts it. The thread sends what the queue holds; while the sink
is down, or anything is still spooled, new events go to the spool behind the older
ones, and the spool is sent oldest first once the sink answers again: the sink sees
one process's events in the order they were recorded.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gui_recorder.settings import AuditSinkSettings
from gui_recorder.siem.spool import Spool
from gui_recorder.siem.transports import SinkDown, Transport, transport_for

log = logging.getLogger(__name__)

BATCH = 500
FIRST_RETRY_SECONDS = 0.1
IDLE_PROBE_SECONDS = 0.25  # how soon a broken idle connection is noticed (inside resend_seconds)


@dataclass
class SinkHealth:
    """What the ops page, /api/ops/audit-sinks and /metrics show of one sink."""

    name: str
    kind: str
    up: bool = True
    queued: int = 0  # in memory
    spooled: int = 0  # on disk, waiting for the sink
    spooled_bytes: int = 0
    delivered: int = 0
    dropped: int = 0  # lost to this stream (still in the database): queue or spool full
    resent: int = 0  # sent again after a broken connection (at least once)
    failures: int = 0
    last_success: float | None = None  # epoch seconds
    last_error: str | None = None
    last_error_at: float | None = None
    extra: dict = field(default_factory=dict)


class Delivery:
    def __init__(self, sink: AuditSinkSettings, spool_root: Path, transport: Transport | None = None):
        self.sink = sink
        self.transport = transport or transport_for(sink)
        self.queue: queue.Queue[dict] = queue.Queue(sink.queue_size)
        self.health = SinkHealth(sink.name, sink.kind if sink.kind != "syslog" else f"syslog-{sink.transport}")
        self._spool_root = spool_root / sink.name
        self.spool: Spool | None = None
        self._lock_file = None
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._down_until = 0.0
        self._backoff = FIRST_RETRY_SECONDS

    # -- the caller's side -----------------------------------------------------------------------

    def offer(self, event: dict) -> None:
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.health.dropped += 1

    def start(self) -> None:
        self.spool, self._lock_file = Spool.claim(self._spool_root, self.sink.spool_max_bytes)
        if self.spool.pending:
            log.info("audit sink %s: %d events spooled by an earlier run, sending them first", self.sink.name,
                     self.spool.pending)
        self._thread = threading.Thread(target=self._run, name=f"audit-sink-{self.sink.name}", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stops after one last attempt; what is still undelivered stays in the spool for the next run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.transport.close()
        if self.spool is not None and (self._thread is None or not self._thread.is_alive()):
            self.spool.close()
            self._lock_file.close()

    def wait_idle(self, timeout: float) -> bool:
        """True once everything offered so far was delivered (for tests and a graceful stop)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self.queue.unfinished_tasks or (self.spool is not None and self.spool.pending):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def snapshot(self) -> SinkHealth:
        h = self.health
        h.queued = self.queue.qsize()
        if self.spool is not None:
            h.spooled, h.spooled_bytes = self.spool.pending, self.spool.bytes
        return h

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self._step(stopping)
            except Exception:  # noqa: BLE001 - a bug here must not end the stream: logged, then retried
                log.exception("audit sink %s: delivery failed unexpectedly", self.sink.name)
                self._failed("internal error (see the log)")
            with self._idle:
                self._idle.notify_all()
            if stopping:
                self._drain()
                return

    def _drain(self) -> None:
        """At a stop: the queue onto the disk, then one try at sending it (bounded: a stop must not hang)."""
        while batch := self._take(0):
            self._spool_new(batch)
        deadline = time.monotonic() + 2.0
        while self.spool.pending and time.monotonic() < deadline and time.monotonic() >= self._down_until:
            events, length = self.spool.peek(BATCH)
            if not self._send(events):
                break
            self.spool.commit(len(events), length)
        with self._idle:
            self._idle.notify_all()

    def _take(self, wait: float) -> list[dict]:
        batch = []
        try:
            batch.append(self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait())
            while len(batch) < BATCH:
                batch.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _done(self, batch: list[dict]) -> None:
        for _ in batch:
            self.queue.task_done()

    def _step(self, stopping: bool) -> None:
        spool = self.spool
        now = time.monotonic()
        if spool.pending and now >= self._down_until:
            self._spool_new(self._take(0))  # keep the order: new events queue behind the spooled
            events, length = spool.peek(BATCH)
            if self._send(events):
                spool.commit(len(events), length)
            return
        wait = 0 if stopping else (min(IDLE_PROBE_SECONDS, self._down_until - now) if spool.pending
                                   else IDLE_PROBE_SECONDS)
        batch = self._take(max(wait, 0))
        if not batch:
            if not spool.pending:
                try:
                    self.transport.probe()
                except SinkDown as down:
                    self._broken(down)
            return
        if spool.pending:
            self._spool_new(batch)
        elif not self._send(batch):
            self._spool_new(batch)
        else:
            self._done(batch)

    def _spool_new(self, batch: list[dict]) -> None:
        if not batch:
            return
        lost = self.spool.append(batch)
        if lost:
            self.health.dropped += len(lost)
            log.error("audit sink %s: spool full (%d bytes): %d events dropped from the stream (they stay "
                      "in the database)", self.sink.name, self.sink.spool_max_bytes, len(lost))
        self._done(batch)

    def _send(self, events: list[dict]) -> bool:
        try:
            self.transport.send(events)
        except SinkDown as down:
            self._broken(down)
            return False
        self.health.delivered += len(events)
        self.health.last_success = time.time()
        if not self.health.up:
            log.warning("audit sink %s is back", self.sink.name)
        self.health.up = True
        self._backoff = FIRST_RETRY_SECONDS
        return True

    def _broken(self, down: SinkDown) -> None:
        if down.unconfirmed:
            self.spool.prepend(down.unconfirmed)
            self.health.resent += len(down.unconfirmed)
        self._failed(str(down))

    def _failed(self, message: str) -> None:
        if self.health.up:
            log.warning("audit sink %s is down, spooling: %s", self.sink.name, message)
        self.health.up = False
        self.health.failures += 1
        self.health.last_error, self.health.last_error_at = message, time.time()
        self._down_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.sink.retry_max_seconds)
