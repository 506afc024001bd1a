"""Routes over sessions: the list, one session's facts, its recording as one stream.

Holders of ``session.view_all`` see every session; other users see their own
rows. Reading a session goes through ``gateway.access`` (visibility and audit);
the rows themselves are ``gui_recorder.sessions.rows``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gui_recorder.db import User
from gui_recorder.gateway.access import SessionGrant, sees_all, session_access
from gui_recorder.gateway.auth import require_capability
from gui_recorder.recording.reader import iter_recording
from gui_recorder.sessions.rows import SessionOut, list_sessions, reviews_of, session_out
from gui_recorder.vocabulary import Capability, SessionStatus

router = APIRouter(prefix="/api/sessions", tags=["sessions"])
VIEW_ROW = session_access(Capability.SESSION_VIEW_OWN, "session.view", collapse=True)
# Each download is a whole copy of the evidence leaving the system: recorded every time.
RECORDING = session_access(Capability.SESSION_VIEW_ALL, "recording.view")


@router.get("", response_model=list[SessionOut])
async def sessions(request: Request, user: User = Depends(require_capability(Capability.SESSION_VIEW_OWN)),
                   username: str | None = Query(None, alias="user", max_length=64),
                   connection: str | None = Query(None, max_length=64),
                   status: SessionStatus | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   limit: int = Query(200, ge=1, le=5000)) -> list[SessionOut]:
    """Sessions, live ones first, then the newest: all of them with `session.view_all`, else your own."""
    rows = await asyncio.to_thread(list_sessions, request.app.state.db, user, username, connection, status,
                                   since, until, limit, all_users=sees_all(user))
    return [session_out(r) for r in rows]


@router.get("/{session_id}", response_model=SessionOut)
async def session_detail(request: Request, grant: SessionGrant = Depends(VIEW_ROW)) -> SessionOut:
    return session_out(grant.session, await asyncio.to_thread(reviews_of, request.app.state.db, grant.session.id))


@router.get("/{session_id}/recording", response_class=StreamingResponse,
            responses={200: {"content": {"application/vnd.guacamole.recording": {}}}})
async def session_recording(request: Request, grant: SessionGrant = Depends(RECORDING)) -> StreamingResponse:
    """The whole recording as one Guacamole protocol stream (plays in `Guacamole.SessionRecording`)."""
    app, session_id = request.app, grant.session.id
    store, spool_root = app.state.reader_store, app.state.recordings.spool.root
    chunks = iter_recording(store, spool_root, session_id)
    first = await asyncio.to_thread(next, chunks, b"")  # a missing recording is a 404, not a broken stream

    def rest():
        yield first
        yield from chunks

    return StreamingResponse(rest(), media_type="application/vnd.guacamole.recording",
                             headers={"Content-Disposition": f"inline; filename={session_id}.guac"})
