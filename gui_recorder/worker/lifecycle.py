"""The storage lifecycle: move aged sessions to cold, forget expired ones, sample usage.

Retention per session: the connection's ``recording_policy.retention_days``
when set, else the configured default; sessions under legal hold are never
deleted. Each run also records how many bytes each tier holds, which is the
history the capacity dashboard draws and extrapolates.

Expired sessions are forgotten by ``gui_recorder.sessions.forget.forget_session``,
the one way a session is deleted (an admin's ``DELETE /api/sessions/{id}`` calls
it too).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select

from gui_recorder.db import Connection, Database, Session
from gui_recorder.db.models import AuditEvent, StorageSample
from gui_recorder.sessions.forget import RETENTION_REASON, TextIndex, forget_session
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


def run_lifecycle(db: Database, tiering: Tiering, hot_days: int, retention_days: int, index: TextIndex,
                  only: set[str] | None = None, spool_root: Path | None = None) -> TieringReport:
    """One pass; ``only`` limits it to some sessions (tests, or an admin's targeted run).

    Expired sessions are forgotten with ``forget_session`` (objects, media, index
    documents, row, audit); one that cannot be (a job still writing) is in
    ``report.failed`` and tried again at the next pass.
    """
    due = [r for r in retentions(db, hot_days, retention_days) if only is None or r.session_id in only]

    def expire(session_id: str) -> None:
        forget_session(db, tiering, index, session_id, by=None, reason=RETENTION_REASON,
                       action="storage.delete", spool_root=spool_root)

    report = tiering.run(due, expire=expire)
    with db.session() as s:
        for session_id in report.moved:
            row = s.get(Session, session_id)
            if row is not None:
                row.tier = "cold"
        now = db.now()
        for session_id in report.moved:
            s.add(AuditEvent(at=now, username=None, action="storage.move_cold", target=session_id, detail={}))
        for tier, usage in tiering.usage().items():
            s.add(StorageSample(at=now, tier=tier, bytes=usage["bytes"], objects=usage["objects"]))
    if report.moved or report.deleted or report.failed:
        log.info("lifecycle: %d moved to cold, %d deleted, %d held, %d failed", len(report.moved),
                 len(report.deleted), len(report.held), len(report.failed))
    return report
