"""Routes over sessions: the list, one session's facts, its recording as one stream.

Holders of ``session.view_all`` see every session; other users see their own
rows. Reading a session goes through ``gateway.access`` (visibility and audit);
the rows themselves are ``gui_recorder.sessions.rows``.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from gui_recorder.db import User
from gui_recorder.gateway.access import SessionGrant, sees_all, session_access
from gui_recorder.gateway.auth import require_capability
from gui_recorder.gateway.scope import scope_of
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.errors import TamperedError
from gui_recorder.recording.reader import iter_recording
from gui_recorder.sessions.tamper import mark_tampered
from gui_recorder.sessions.rows import SessionOut, list_sessions, reviews_of, session_out
from gui_recorder.vocabulary import Capability, SessionStatus

router = APIRouter(prefix="/api/sessions", tags=["sessions"])
VIEW_ROW = session_access(Capability.SESSION_VIEW_OWN, "session.view", collapse=True)
# Each download is a whole copy of the evidence leaving the system: recorded every time.
RECORDING = session_access(Capability.SESSION_VIEW_ALL, "recording.view")


@router.get("", response_model=list[SessionOut])
def sessions(services: ServicesDep, user: User = Depends(require_capability(Capability.SESSION_VIEW_OWN)),
             username: str | None = Query(None, alias="user", max_length=64),
             connection: str | None = Query(None, max_length=64),
             status: SessionStatus | None = None,
             since: datetime | None = None, until: datetime | None = None,
             limit: int = Query(200, ge=1, le=5000)) -> list[SessionOut]:
    """Sessions, live ones first, then the newest: all of them with `session.view_all` (those in your scope
    when you are scoped to tags, and your own), else your own."""
    everyone = sees_all(user)
    scope = scope_of(services.db, user) if everyone else None
    rows = list_sessions(services.db, user, username, connection, status, since, until, limit,
                         all_users=everyone, in_connections=scope.connection_ids if scope else None)
    return [session_out(r) for r in rows]


@router.get("/{session_id}", response_model=SessionOut)
def session_detail(services: ServicesDep, grant: SessionGrant = Depends(VIEW_ROW)) -> SessionOut:
    return session_out(grant.session, reviews_of(services.db, grant.session.id))


def checked_recording(services, session_id: str, where: str, by: str | None = None):
    """The decrypted recording; a tampered one is reported (status, audit, metric) and the stream cut there."""
    try:
        yield from iter_recording(services.reader_store, services.spool_root, session_id, services.keyring)
    except TamperedError as exc:
        services.recordings.tampered_reads += 1
        mark_tampered(services.db, session_id, exc, where, by)
        raise


@router.get("/{session_id}/recording", response_class=StreamingResponse,
            responses={200: {"content": {"application/vnd.guacamole.recording": {}}}})
def session_recording(services: ServicesDep, grant: SessionGrant = Depends(RECORDING)) -> StreamingResponse:
    """The whole recording as one Guacamole protocol stream (plays in `Guacamole.SessionRecording`)."""
    session_id = grant.session.id
    chunks = checked_recording(services, session_id, "serving it", grant.user.username)
    first = next(chunks, b"")  # a missing recording is a 404, not a broken stream

    def rest():
        yield first
        yield from chunks

    return StreamingResponse(rest(), media_type="application/vnd.guacamole.recording",
                             headers={"Content-Disposition": f"inline; filename={session_id}.guac"})
