"""Reading a session's data: who may see it, and the audit event every read leaves.

Everything a route serves of a session (its row, recording, video with every
Range request, video facts, thumbnails, sprite, poster, text timeline,
evidence bundle) is reached through ``session_access``, and the search across
sessions through ``search_access``. Both check the capability first (403),
then that the reader may see the session (404 for someone else's session
without ``session.view_all``: it does not exist for them), then write the
audit event *before* a byte is served: a read whose event cannot be written
fails. ``tests/test_route_matrix.py`` walks ``app.routes`` and fails on a
route under ``/api/sessions/{session_id}`` without ``session_access``, and on
a GET there (or the search) whose dependency records nothing, so a new route
cannot forget.

A browser reads a video in many Range requests and fetches a thumbnail per
hover; ``ViewWindow`` folds repeated reads of one kind by one viewer of one
session into one event per ``audit_view_window_seconds``. Whole copies (the
recording, the evidence bundle) and searches are recorded every time.

Actions on a session (review, terminate, legal hold, a watch token) take
``session_access`` with ``audit=None`` for the same checks, and record their
own event with its details once they have happened.

The list of sessions is not audited: it is the index of rows each user is
entitled to (every page refresh would be an event) and serves no content.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Depends, Path, Query, Request

from gui_recorder.db import Database, Session, User
from gui_recorder.errors import NotFoundError
from gui_recorder.gateway import audit
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.vocabulary import Capability, has_capability

# Remembered (viewer, session, action) keys; past this, reads are recorded without being remembered:
# a flood of distinct reads costs events, never memory, and never goes unrecorded.
MAX_REMEMBERED_VIEWS = 100_000


def sees_all(user: User) -> bool:
    return has_capability(user.role, Capability.SESSION_VIEW_ALL)


def visible_session(db: Database, user: User, session_id: str) -> Session:
    """The session's row if ``user`` may see it: every row with ``session.view_all``, else their own."""
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None or (not sees_all(user) and row.user_id != user.id):
        raise NotFoundError(f"no session {session_id}")
    return row


class ViewWindow:
    """Records one audit event per (viewer, session, action) and window, and never serves a read unrecorded.

    Times come from the database's clock (``Database.now``), so tests move it
    instead of sleeping. A read that finds the event of its window still being
    written waits for that write: if it fails, the read writes its own (and
    fails if that fails too), so parallel Range requests cannot slip past a
    failed write. Keys are remembered up to ``limit``; beyond it reads are
    recorded without being remembered (more events, never fewer).
    """

    def __init__(self, seconds: float, limit: int = MAX_REMEMBERED_VIEWS):
        self.window = timedelta(seconds=seconds)
        self.limit = limit
        # key -> (when its event was written or started, a future: True once written, False if that failed)
        self._last: dict[tuple[str, str, str], tuple[datetime, asyncio.Future]] = {}

    async def record_once(self, key: tuple[str, str, str], now: datetime,
                          write: Callable[[], Awaitable[None]]) -> None:
        entry = self._last.get(key)
        if self.window and entry is not None and entry[0] <= now < entry[0] + self.window:
            # shield: a reader that goes away must not cancel the write another reader waits on.
            if await asyncio.shield(entry[1]):
                return
        if not self.window:
            await write()
            return
        if key not in self._last and len(self._last) >= self.limit:
            self._last = {k: e for k, e in self._last.items() if e[0] + self.window > now or not e[1].done()}
            if len(self._last) >= self.limit:
                await write()
                return
        done = asyncio.get_running_loop().create_future()
        self._last[key] = (now, done)
        try:
            await write()
        except BaseException:
            if self._last.get(key, (None, None))[1] is done:
                del self._last[key]  # the next read must try again
            done.set_result(False)
            raise
        done.set_result(True)


async def record_read(request: Request, user: User, action: str, target: str | None, detail: dict,
                      collapse: bool = False) -> None:
    db = request.app.state.db

    async def write() -> None:
        await asyncio.to_thread(audit.record_event, db, user.username, action, target, client_addr(request),
                                detail)

    if not collapse:
        await write()
        return
    window: ViewWindow = request.app.state.view_window
    await window.record_once((user.username, target or "", action), db.now(), write)


@dataclass(frozen=True)
class AccessSpec:
    """What a session dependency checks and records; read by the route matrix test."""

    capability: Capability
    audit: str | None  # the audit action of a read; None for actions that record their own event
    collapse: bool


@dataclass(frozen=True)
class SessionGrant:
    user: User
    session: Session


def session_access(capability: Capability, audit: str | None, *, collapse: bool = False):
    """The one dependency of every route under ``/api/sessions/{session_id}``.

    ``audit`` names the event a read records (``video.view``); ``collapse``
    folds repeated reads into one event per window (media a browser fetches
    in pieces). Actions pass ``audit=None`` and record their own event.
    """
    spec = AccessSpec(Capability(capability), audit, collapse)
    need = require_capability(spec.capability)

    async def access(request: Request, session_id: str = Path(max_length=64),
                     user: User = Depends(need)) -> SessionGrant:
        row = await asyncio.to_thread(visible_session, request.app.state.db, user, session_id)
        if spec.audit:
            await record_read(request, user, spec.audit, session_id, {}, spec.collapse)
        return SessionGrant(user, row)

    access.session_access = spec
    access.__name__ = f"session_{(audit or capability.value).replace('.', '_')}"
    return access


@dataclass(frozen=True)
class SearchQuery:
    q: str
    user: str | None
    connection: str | None
    protocol: str | None
    source: str | None
    since: datetime | None
    until: datetime | None
    limit: int


@dataclass(frozen=True)
class SearchGrant:
    user: User
    query: SearchQuery


async def search_access(request: Request, q: str = Query(..., max_length=500),
                        user: str | None = Query(None, max_length=64),
                        connection: str | None = Query(None, max_length=64),
                        protocol: str | None = Query(None, max_length=16),
                        source: str | None = Query(None, max_length=16),
                        since: datetime | None = None, until: datetime | None = None,
                        limit: int = Query(50, ge=1, le=500),
                        me: User = Depends(require_capability(Capability.SEARCH))) -> SearchGrant:
    """The search's parameters, checked, and the ``search`` event with all of them, before it runs."""
    query = SearchQuery(q, user, connection, protocol, source, since, until, limit)
    await record_read(request, me, "search", None,
                      {"q": q, "user": user, "connection": connection, "protocol": protocol, "source": source,
                       "since": since.isoformat() if since else None,
                       "until": until.isoformat() if until else None})
    return SearchGrant(me, query)


search_access.session_access = AccessSpec(Capability.SEARCH, "search", False)
