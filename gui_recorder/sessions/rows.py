"""Session rows: what the tunnel, the uploader and the importer write, and what readers get.

The one place session bookkeeping happens (issue 11): the tunnel creates and
ends rows, the uploader's hooks record the stored manifest, the gateway closes
rows a dead gateway left live, the API lists and describes them. No FastAPI
here; the routes in ``gateway/sessions_api.py`` are thin over it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import case, or_, select

from gui_recorder.db import Connection, Database, Session, User
from gui_recorder.db.models import Review
from gui_recorder.errors import NotFoundError
from gui_recorder.storage.keys import manifest_key
from gui_recorder.vocabulary import SESSION_STATUSES, SessionStatus, Tier


# -- what the tunnel and the uploader write ----------------------------------

def create_session(db: Database, user: User, connection: Connection, client: str | None,
                   guacd_connection_id: str | None, gateway_id: str | None = None) -> Session:
    with db.session() as s:
        row = Session(id=str(uuid.uuid4()), user_id=user.id, username=user.username, connection_id=connection.id,
                      connection_name=connection.name, protocol=connection.protocol, client_addr=client,
                      started_at=db.now(), status=SessionStatus.ACTIVE, guacd_connection_id=guacd_connection_id,
                      gateway_id=gateway_id, bytes_to_client=0, bytes_from_client=0, recording={},
                      recording_complete=False)
        s.add(row)
        s.flush()
        return row


_COLUMNS = frozenset(Session.__table__.columns.keys()) - {"id"}


def update_session(db: Database, session_id: str, **fields) -> None:
    unknown = set(fields) - _COLUMNS
    if unknown:
        # setattr would silently keep a misspelt field off the row.
        raise TypeError(f"sessions have no column {sorted(unknown)}")
    if fields.get("status", SessionStatus.ACTIVE) not in SESSION_STATUSES:
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


def close_interrupted(db: Database, reason: str,
                      last_write: Callable[[str], datetime | None] | None = None,
                      gateway_id: str | None = None) -> list[str]:
    """At start-up: this gateway's rows still ``active`` died with its last run; close them as ``interrupted``.

    ``ended_at`` is the last write to its spool when known (the last moment anything was recorded),
    else now. Only this gateway's rows (and rows that name no gateway, from before gateways had
    names): the sessions of other gateways sharing the database are alive.
    """
    own = Session.status == SessionStatus.ACTIVE
    if gateway_id is not None:
        own = own & ((Session.gateway_id == gateway_id) | Session.gateway_id.is_(None))
    with db.session() as s:
        rows = s.scalars(select(Session).where(own)).all()
        now = db.now()
        for row in rows:
            ended = (last_write(row.id) if last_write else None) or now
            row.status = SessionStatus.INTERRUPTED
            row.end_reason = reason
            row.ended_at = max(ended, row.started_at) if row.started_at else ended
        return [row.id for row in rows]


def object_metadata(db: Database, session_id: str, tier: str) -> dict[str, str]:
    """What every object of a session carries in its bucket: whose, which connection, which tier."""
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None:
        return {"session": session_id, "tier": tier}
    return {"session": session_id, "user": row.username, "connection": row.connection_id, "tier": tier}


def recording_stored(db: Database, session_id: str, manifest: dict,
                     on_complete: Callable[[str], None] | None = None) -> None:
    """The uploader's hook: the manifest as it stands in the object store.

    A complete recording is queued (``on_complete``) whatever ended the session: one cut short by a
    gateway crash (``interrupted``) or by a full disk (``recording_error``) is evidence too.
    """
    summary = {"manifest": manifest_key(session_id), "bytes": manifest.get("bytes", 0),
               "segments": [{k: s[k] for k in ("key", "size", "sha256")} for s in manifest["segments"]],
               "duration_ms": manifest.get("meta", {}).get("duration_ms")}
    if manifest.get("complete"):
        summary["interrupted"] = bool(manifest.get("interrupted"))
        summary["recording_error"] = manifest.get("recording_error")
    try:
        update_session(db, session_id, recording=summary,
                       recording_complete=bool(manifest.get("complete")))
    except NotFoundError:
        return  # a recording from another gateway's database: the object store still has it
    if manifest.get("complete") and on_complete and manifest.get("bytes", 0) > 0:
        # An empty recording (the browser left before guacd sent a byte) has nothing to render or read.
        on_complete(session_id)


# -- what readers get ----------------------------------------------------------

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


def session_out(row: Session, reviews: list[dict] | None = None) -> SessionOut:
    return SessionOut(id=row.id, user=row.username, connection=row.connection_id,
                      connection_name=row.connection_name, protocol=row.protocol, client_addr=row.client_addr,
                      started_at=row.started_at, ended_at=row.ended_at, bytes_to_client=row.bytes_to_client,
                      bytes_from_client=row.bytes_from_client, end_reason=row.end_reason, status=row.status,
                      recording=row.recording or {}, recording_complete=row.recording_complete,
                      wall_start=row.wall_start, video=row.video or {}, tier=row.tier or Tier.HOT,
                      legal_hold=bool(row.legal_hold), reviews=reviews or [])


def list_sessions(db: Database, user: User, username: str | None, connection: str | None, status: str | None,
                  since: datetime | None, until: datetime | None, limit: int, *, all_users: bool,
                  in_connections: frozenset[str] | None = None) -> list[Session]:
    """Live ones first, then the newest; only ``user``'s own rows unless ``all_users``; with
    ``in_connections`` (a scoped auditor), only their own rows and those of these connections."""
    live_first = case((Session.status == SessionStatus.ACTIVE, 0), else_=1)
    query = select(Session).order_by(live_first, Session.started_at.desc()).limit(limit)
    if not all_users:
        query = query.where(Session.user_id == user.id)
    elif in_connections is not None:
        query = query.where(or_(Session.user_id == user.id, Session.connection_id.in_(sorted(in_connections))))
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


def reviews_of(db: Database, session_id: str) -> list[dict]:
    with db.session() as s:
        rows = s.scalars(select(Review).where(Review.session_id == session_id).order_by(Review.id))
        return [{"reviewed_by": r.reviewed_by, "reviewed_at": r.reviewed_at.isoformat(), "comment": r.comment}
                for r in rows]


class ReviewOut(BaseModel):
    reviewed_by: str
    reviewed_at: str
    comment: str


def add_review(db: Database, session_id: str, username: str, comment: str) -> ReviewOut:
    at = db.now()
    with db.session() as s:
        s.add(Review(session_id=session_id, reviewed_by=username, reviewed_at=at, comment=comment))
    return ReviewOut(reviewed_by=username, reviewed_at=at.isoformat(), comment=comment)
