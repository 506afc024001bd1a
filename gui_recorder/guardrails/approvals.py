"""Just-in-time access: requests for a window on a connection, decided by an approver.

A connection whose policy has ``require_approval`` issues tunnel tokens only
inside an approved window of the asking user (``open_window``); the gateway
warns the live session ``WARN_BEFORE`` before the window's end and ends it at
the end (``gateway.guard.enforce_loop``). Times come from the database's clock,
so tests move it instead of waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from gui_recorder.db import Database
from gui_recorder.db.models import AccessRequest
from gui_recorder.errors import ConflictError, ForbiddenError, NotFoundError
from gui_recorder.vocabulary import AccessRequestStatus

WARN_BEFORE = timedelta(minutes=5)
MAX_WINDOW = timedelta(days=7)


def as_dict(r: AccessRequest) -> dict:
    return {"id": r.id, "user": r.username, "connection_id": r.connection_id, "reason": r.reason,
            "starts_at": r.starts_at.isoformat(), "ends_at": r.ends_at.isoformat(), "status": r.status,
            "requested_at": r.requested_at.isoformat(), "decided_by": r.decided_by,
            "decided_at": r.decided_at.isoformat() if r.decided_at else None, "note": r.note}


def request_access(db: Database, username: str, connection_id: str, reason: str, starts_at: datetime,
                   ends_at: datetime) -> dict:
    if ends_at <= starts_at:
        raise ConflictError("the window must end after it starts")
    if ends_at - starts_at > MAX_WINDOW:
        raise ConflictError(f"a window is at most {MAX_WINDOW.days} days")
    if ends_at <= db.now():
        raise ConflictError("the window is already over")
    with db.session() as s:
        row = AccessRequest(username=username, connection_id=connection_id, reason=reason, starts_at=starts_at,
                            ends_at=ends_at, status=AccessRequestStatus.PENDING, requested_at=db.now())
        s.add(row)
        s.flush()
        return as_dict(row)


def decide(db: Database, request_id: int, approver: str, approve: bool, note: str) -> dict:
    with db.session() as s:
        row = s.get(AccessRequest, request_id)
        if row is None:
            raise NotFoundError(f"no access request {request_id}")
        if row.status != AccessRequestStatus.PENDING:
            raise ConflictError(f"the request was already {row.status}")
        if row.username == approver:
            raise ForbiddenError("nobody approves their own access request")
        row.status = AccessRequestStatus.APPROVED if approve else AccessRequestStatus.DENIED
        row.decided_by, row.decided_at, row.note = approver, db.now(), note
        s.flush()
        return as_dict(row)


def list_requests(db: Database, username: str | None = None, status: str | None = None,
                  limit: int = 200) -> list[dict]:
    query = select(AccessRequest).order_by(AccessRequest.id.desc()).limit(min(limit, 1000))
    if username:
        query = query.where(AccessRequest.username == username)
    if status:
        query = query.where(AccessRequest.status == status)
    with db.session() as s:
        return [as_dict(r) for r in s.scalars(query)]


def open_window(db: Database, username: str, connection_id: str) -> datetime:
    """The end of the approved window open now for this user and connection; ``ForbiddenError`` otherwise."""
    now = db.now()
    with db.session() as s:
        row = s.scalar(select(AccessRequest).where(
            AccessRequest.username == username, AccessRequest.connection_id == connection_id,
            AccessRequest.status == AccessRequestStatus.APPROVED, AccessRequest.starts_at <= now,
            AccessRequest.ends_at > now).order_by(AccessRequest.ends_at.desc()))
    if row is None:
        raise ForbiddenError(f"the connection {connection_id!r} needs an approved access window and you have "
                             "none open now: request one (POST /api/connections/{id}/access-requests)")
    return row.ends_at
