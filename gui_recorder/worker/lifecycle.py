"""The storage lifecycle: move aged sessions to their next tier, forget expired ones, sample usage.

Retention per session: the connection's ``recording_policy.retention_days``
when set, else the configured default; sessions under legal hold are never
deleted. When a session moves is the tiers' ``after_days`` (``Settings.tiers``,
held by ``Tiering``). Each run also records how many bytes each tier holds, which
is the history the capacity dashboard draws and extrapolates.

With media dropped on the move (``Settings.cold_drop_media``), the session row's
``video`` says so (``media_dropped``) and keeps the facts (duration, idle); the
media API renders it again when an auditor opens it.

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
from gui_recorder.vocabulary import Tier

log = logging.getLogger(__name__)


def retentions(db: Database, retention_days: int) -> list[Retention]:
    """Every ended session not yet forgotten, with its retention (the connection's, else the default)."""
    with db.session() as s:
        overrides = {c.id: (c.recording_policy or {}).get("retention_days") for c in s.scalars(select(Connection))}
        rows = s.scalars(select(Session).where(Session.ended_at.is_not(None), Session.tier != Tier.DELETED))
        out = []
        for row in rows:
            keep = overrides.get(row.connection_id) or retention_days
            out.append(Retention(row.id, row.ended_at, retention_days=keep, legal_hold=bool(row.legal_hold),
                                 metadata={"user": row.username, "connection": row.connection_id}))
        return out


def run_lifecycle(db: Database, tiering: Tiering, retention_days: int, index: TextIndex,
                  only: set[str] | None = None, spool_root: Path | None = None) -> TieringReport:
    """One pass; ``only`` limits it to some sessions (tests, or an admin's targeted run).

    Expired sessions are forgotten with ``forget_session`` (objects, media, index
    documents, row, audit); one that cannot be (a job still writing) is in
    ``report.failed`` and tried again at the next pass.
    """
    due = [r for r in retentions(db, retention_days) if only is None or r.session_id in only]

    def expire(session_id: str) -> None:
        forget_session(db, tiering, index, session_id, by=None, reason=RETENTION_REASON,
                       action="storage.delete", spool_root=spool_root)

    report = tiering.run(due, expire=expire)
    with db.session() as s:
        now = db.now()
        for session_id, tier in report.moved.items():
            row = s.get(Session, session_id)
            if row is not None:
                row.tier = tier
                if session_id in report.media_dropped and row.video:
                    row.video = {**row.video, "media_dropped": True, "media_bytes_dropped":
                                 report.media_dropped[session_id]}
            # storage.move_cold with the default tiers, as before tiers were a setting.
            s.add(AuditEvent(at=now, username=None, action=f"storage.move_{tier}", target=session_id,
                             detail={"tier": tier, "media_dropped": report.media_dropped.get(session_id, 0)}))
        for tier, usage in tiering.usage().items():
            s.add(StorageSample(at=now, tier=tier, bytes=usage["bytes"], objects=usage["objects"]))
    if report.moved or report.deleted or report.failed:
        log.info("lifecycle: %d moved (%s), %d deleted, %d held, %d failed", len(report.moved),
                 ", ".join(f"{sid} to {tier}" for sid, tier in report.moved.items()) or "none",
                 len(report.deleted), len(report.held), len(report.failed))
    return report
