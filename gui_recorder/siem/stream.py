"""Every configured sink (``settings.audit_sinks``), fed each audit event once it is committed.

The database owns one stream per process (``db.Database``): the chain hook hands it
each committed event, so the gateway, the worker and the CLI stream what they
record without a call of their own. Sinks start on the first event, so a command
that records nothing (``verify-audit``) opens no connection and claims no spool.
"""

from __future__ import annotations

import logging
import threading

from gui_recorder.settings import Settings
from gui_recorder.siem.delivery import Delivery, SinkHealth

log = logging.getLogger(__name__)


class AuditStream:
    def __init__(self, deliveries: list[Delivery]):
        self.deliveries = deliveries
        self._started = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "AuditStream | None":
        if not settings.audit_sinks:
            return None
        root = settings.var_dir / "audit-spool"
        return cls([Delivery(sink, root) for sink in settings.audit_sinks])

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            for d in self.deliveries:
                d.start()
            self._started = True

    def publish(self, event: dict) -> None:
        """Never blocks: each sink's queue takes the event or counts it dropped."""
        if not self._started:
            self.start()
        for d in self.deliveries:
            d.offer(event)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return all(d.wait_idle(timeout) for d in self.deliveries)

    def health(self) -> list[SinkHealth]:
        return [d.snapshot() for d in self.deliveries]

    def close(self) -> None:
        if self._started:
            for d in self.deliveries:
                d.close()
