"""Sessions: the rows the tunnel writes, the API that lists them, and their recordings.

Admins and auditors see every session; other users see their own. Only admins
and auditors may fetch a recording, and every fetch is audited.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import case, select

from gui_recorder.db import Connection, Database, Session, User
from gui_recorder.db.models import SESSION_STATUSES, SESSION_VIEWER_ROLES, Review
from gui_recorder.errors import NotFoundError
from gui_recorder.gateway import audit
from gui_recorder.gateway.auth import client_addr, current_user, require_roles
from gui_recorder.recording.reader import iter_recording

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


# -- what the tunnel and the uploader write ----------------------------------

def create_session(db: Database, user: User, connection: Connection, client: str | None,
                   guacd_connection_id: str | None) -> Session:
    with db.session() as s:
        row = Session(id=str(uuid.uuid4()), user_id=user.id, username=user.username, connection_id=connection.id,
                      connection_name=connection.name, protocol=connection.protocol, client_addr=client,
                      started_at=db.now(), status="active", guacd_connection_id=guacd_connection_id,
                      bytes_to_client=0, bytes_from_client=0, recording={}, recording_complete=False)
        s.add(row)
        s.flush()
        return row


_COLUMNS = frozenset(Session.__table__.columns.keys()) - {"id"}


def update_session(db: Database, session_id: str, **fields) -> None:
    unknown = set(fields) - _COLUMNS
    if unknown:
        # setattr would silently keep a misspelt field off the row.
        raise TypeError(f"sessions have no column {sorted(unknown)}")
    if fields.get("status", "active") not in SESSION_STATUSES:
        raise ValueError(f"session status must be one of {SESSION_STATUSES}")
    with db.session() as s:
        row = s.get(Session, session_id)
        if row is None:
            raise NotFoundError(f"no session {session_id}")
        for name, value in fields.items():
            setattr(row, name, value)


def end_session(db: Database, session_id: str, status: str, end_reason: str, bytes_to_client: int,
                bytes_from_client: int, wall_start: int | None) -> None:
    update_session(db, session_id, status=status, end_reason=end_reason, ended_at=db.now(),
                   bytes_to_client=bytes_to_client, bytes_from_client=bytes_from_client, wall_start=wall_start)


def recording_stored(db: Database, session_id: str, manifest: dict,
                     on_complete: Callable[[str], None] | None = None) -> None:
    """The uploader's hook: the manifest as it stands in the object store."""
    summary = {"manifest": f"sessions/{session_id}/manifest.json", "bytes": manifest.get("bytes", 0),
               "segments": [{k: s[k] for k in ("key", "size", "sha256")} for s in manifest["segments"]],
               "duration_ms": manifest.get("meta", {}).get("duration_ms")}
    try:
        update_session(db, session_id, recording=summary,
                       recording_complete=bool(manifest.get("complete")))
    except NotFoundError:
        return  # a recording from another gateway's database: the object store still has it
    if manifest.get("complete") and on_complete:
        on_complete(session_id)


# -- the API -------------------------------------------------------------------

class SessionOut(BaseModel):
    id: str
    user: str
    connection: str
    connection_name: str
    protocol: str
    client_addr: str | None
    started_at: datetime
    ended_at: datetime | None
    bytes_to_client: int
    bytes_from_client: int
    end_reason: str | None
    status: str
    recording: dict
    recording_complete: bool
    wall_start: int | None
    video: dict
    tier: str
    legal_hold: bool
    reviews: list[dict]


def _out(row: Session, reviews: list[dict] | None = None) -> SessionOut:
    return SessionOut(id=row.id, user=row.username, connection=row.connection_id,
                      connection_name=row.connection_name, protocol=row.protocol, client_addr=row.client_addr,
                      started_at=row.started_at, ended_at=row.ended_at, bytes_to_client=row.bytes_to_client,
                      bytes_from_client=row.bytes_from_client, end_reason=row.end_reason, status=row.status,
                      recording=row.recording or {}, recording_complete=row.recording_complete,
                      wall_start=row.wall_start, video=row.video or {}, tier=row.tier or "hot",
                      legal_hold=bool(row.legal_hold), reviews=reviews or [])


def visible_session(db: Database, user: User, session_id: str) -> Session:
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None or (user.role not in SESSION_VIEWER_ROLES and row.user_id != user.id):
        raise NotFoundError(f"no session {session_id}")
    return row


def list_sessions(db: Database, user: User, username: str | None, connection: str | None, status: str | None,
                  since: datetime | None, until: datetime | None, limit: int) -> list[Session]:
    live_first = case((Session.status == "active", 0), else_=1)
    query = select(Session).order_by(live_first, Session.started_at.desc()).limit(limit)
    if user.role not in SESSION_VIEWER_ROLES:
        query = query.where(Session.user_id == user.id)
    if username:
        query = query.where(Session.username == username)
    if connection:
        query = query.where(Session.connection_id == connection)
    if status:
        query = query.where(Session.status == status)
    if since:
        query = query.where(Session.started_at >= since)
    if until:
        query = query.where(Session.started_at <= until)
    with db.session() as s:
        return list(s.scalars(query))


@router.get("", response_model=list[SessionOut])
async def sessions(request: Request, user: User = Depends(current_user),
                   username: str | None = Query(None, alias="user", max_length=64),
                   connection: str | None = Query(None, max_length=64),
                   status: Literal["active", "ended", "failed", "terminated"] | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   limit: int = Query(200, ge=1, le=5000)) -> list[SessionOut]:
    """Sessions, live ones first, then the newest. Admins and auditors see all; others their own."""
    rows = await asyncio.to_thread(list_sessions, request.app.state.db, user, username, connection, status,
                                   since, until, limit)
    return [_out(r) for r in rows]


@router.get("/{session_id}", response_model=SessionOut)
async def session_detail(session_id: str, request: Request, user: User = Depends(current_user)) -> SessionOut:
    db = request.app.state.db
    row = await asyncio.to_thread(visible_session, db, user, session_id)
    return _out(row, await asyncio.to_thread(reviews_of, db, session_id))


def reviews_of(db: Database, session_id: str) -> list[dict]:
    with db.session() as s:
        rows = s.scalars(select(Review).where(Review.session_id == session_id).order_by(Review.id))
        return [{"reviewed_by": r.reviewed_by, "reviewed_at": r.reviewed_at.isoformat(), "comment": r.comment}
                for r in rows]


@router.get("/{session_id}/recording", response_class=StreamingResponse,
            responses={200: {"content": {"application/vnd.guacamole.recording": {}}}})
async def session_recording(session_id: str, request: Request,
                            user: User = Depends(require_roles(*SESSION_VIEWER_ROLES))) -> StreamingResponse:
    """The whole recording as one Guacamole protocol stream (plays in `Guacamole.SessionRecording`)."""
    db, app = request.app.state.db, request.app
    await asyncio.to_thread(visible_session, db, user, session_id)
    store, spool_root = app.state.reader_store, app.state.recordings.spool.root
    chunks = iter_recording(store, spool_root, session_id)
    first = await asyncio.to_thread(next, chunks, b"")  # a missing recording is a 404, not a broken stream
    await asyncio.to_thread(audit.record_event, db, user.username, "recording.view", session_id,
                            client_addr(request), {})

    def rest():
        yield first
        yield from chunks

    return StreamingResponse(rest(), media_type="application/vnd.guacamole.recording",
                             headers={"Content-Disposition": f"inline; filename={session_id}.guac"})

