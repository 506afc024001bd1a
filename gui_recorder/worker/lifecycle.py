"""The storage lifecycle job: move aged sessions to cold, delete expired ones, sample usage.

Retention per session: the connection's ``recording_policy.retention_days``
when set, else the configured default; sessions under legal hold are never
deleted. Each run also records how many bytes each tier holds, which is the
history the capacity dashboard draws and extrapolates.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from gui_recorder.db import Connection, Database, Session
from gui_recorder.db.models import AuditEvent, StorageSample
from gui_recorder.storage.tiering import Retention, Tiering, TieringReport

log = logging.getLogger(__name__)


def retentions(db: Database, hot_days: int, retention_days: int) -> list[Retention]:
    with db.session() as s:
        overrides = {c.id: (c.recording_policy or {}).get("retention_days") for c in s.scalars(select(Connection))}
        rows = s.scalars(select(Session).where(Session.ended_at.is_not(None), Session.tier.in_(("hot", "cold"))))
        out = []
        for row in rows:
            keep = overrides.get(row.connection_id) or retention_days
            out.append(Retention(row.id, row.ended_at, hot_days=min(hot_days, keep), retention_days=keep,
                                 legal_hold=bool(row.legal_hold),
                                 metadata={"user": row.username, "connection": row.connection_id}))
        return out


def run_lifecycle(db: Database, tiering: Tiering, hot_days: int, retention_days: int,
                  on_deleted=None, only: set[str] | None = None) -> TieringReport:
    """One pass; ``only`` limits it to some sessions (tests, or an admin's targeted run)."""
    due = [r for r in retentions(db, hot_days, retention_days) if only is None or r.session_id in only]
    report = tiering.run(due)
    with db.session() as s:
        for session_id, tier in [(sid, "cold") for sid in report.moved] + [(sid, "deleted") for sid in report.deleted]:
            row = s.get(Session, session_id)
            if row is not None:
                row.tier = tier
        now = db.now()
        for session_id in report.moved:
            s.add(AuditEvent(at=now, username=None, action="storage.move_cold", target=session_id, detail={}))
        for session_id in report.deleted:
            s.add(AuditEvent(at=now, username=None, action="storage.delete", target=session_id,
                             detail={"reason": "retention expired"}))
        for tier, usage in tiering.usage().items():
            s.add(StorageSample(at=now, tier=tier, bytes=usage["bytes"], objects=usage["objects"]))
    if on_deleted:
        for session_id in report.deleted:
            on_deleted(session_id)
    if report.moved or report.deleted or report.failed:
        log.info("lifecycle: %d moved to cold, %d deleted, %d held, %d failed", len(report.moved),
                 len(report.deleted), len(report.held), len(report.failed))
    return report
