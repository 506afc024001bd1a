"""The audit trail: who did what, when, from where (routes in ``audit_api``).

Each event becomes a link of the hash chain as it is flushed (``db/audit_chain.py``) and, once
committed, goes to the configured SIEM sinks: nothing here needs to know.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from gui_recorder.db import AuditEvent, Database
from gui_recorder.db.audit_chain import event_record


def record_event(db: Database, username: str | None, action: str, target: str | None,
                 client_addr: str | None, detail: dict | None = None) -> None:
    with db.session() as s:
        s.add(AuditEvent(at=db.now(), username=username, action=action, target=target, client_addr=client_addr,
                         detail=detail or {}))


def _as_dict(e: AuditEvent) -> dict:
    return event_record(e)  # with seq, prev_hash and hash: the export can be checked link by link


def list_events(db: Database, action: str | None = None, username: str | None = None,
                since: datetime | None = None, limit: int = 500) -> list[dict]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEvent.action == action)
    if username:
        query = query.where(AuditEvent.username == username)
    if since:
        query = query.where(AuditEvent.at >= since)
    with db.session() as s:
        return [_as_dict(e) for e in s.scalars(query)]

