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
hover; ``view_window.ViewWindow`` folds repeated reads of one kind by one viewer of one
session into one event per ``audit_view_window_seconds``. Whole copies (the
recording, the evidence bundle) and searches are recorded every time.

Actions on a session (review, terminate, legal hold, a watch token) take
``session_access`` with ``audit=None`` for the same checks, and record their
own event with its details once they have happened.

Auditor scopes (``scope``): an overseer limited to tags sees, besides its own
sessions, only those of connections with one of its tags; every other session
is a 404 here exactly as someone else's session is to a vendor, and the search
is limited to the same connections (``SearchQuery.connections``). The sessions
list asks ``scope_of`` too (``sessions_api``).

The list of sessions is not audited: it is the index of rows each user is
entitled to (every page refresh would be an event) and serves no content.

These dependencies stay ``async`` (their database work in a thread) while the
routes they guard are mostly plain ``def``: the view window folds parallel
reads with asyncio futures on the event loop, and FastAPI resolves every
dependency before the route body runs, so the event is written before a byte
is served either way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, Path, Query, Request

from gui_recorder.db import Database, Session, User
from gui_recorder.errors import NotFoundError
from gui_recorder.gateway import audit
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.scope import oversees, scope_of
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.vocabulary import Capability, has_capability
from gui_recorder import telemetry


def sees_all(user: User) -> bool:
    return has_capability(user.role, Capability.SESSION_VIEW_ALL)


def visible_session(db: Database, user: User, session_id: str) -> Session:
    """The session's row if ``user`` may see it: their own; every other one in their scope with
    ``session.view_all`` (every one when they are not scoped)."""
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None or (row.user_id != user.id
                       and not (sees_all(user) and oversees(db, user, row.connection_id))):
        raise NotFoundError(f"no session {session_id}")
    return row


async def record_read(services: Services, request: Request, user: User, action: str, target: str | None,
                      detail: dict, collapse: bool = False) -> None:
    db = services.db

    async def write() -> None:
        await asyncio.to_thread(audit.record_event, db, user.username, action, target, client_addr(request),
                                detail)

    if not collapse:
        await write()
        return
    await services.view_window.record_once((user.username, target or "", action), db.now(), write)


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

    async def access(request: Request, services: ServicesDep, session_id: str = Path(max_length=64),
                     user: User = Depends(need)) -> SessionGrant:
        row = await asyncio.to_thread(visible_session, services.db, user, session_id)
        telemetry.bind(session=row.id)  # the route's log lines and spans name the session (issue 18)
        if spec.audit:
            await record_read(services, request, user, spec.audit, session_id, {}, spec.collapse)
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
    connections: frozenset[str] | None = None  # the searcher's scope (``scope``); None: every connection


@dataclass(frozen=True)
class SearchGrant:
    user: User
    query: SearchQuery


async def search_access(request: Request, services: ServicesDep, q: str = Query(..., max_length=500),
                        user: str | None = Query(None, max_length=64),
                        connection: str | None = Query(None, max_length=64),
                        protocol: str | None = Query(None, max_length=16),
                        source: str | None = Query(None, max_length=16),
                        since: datetime | None = None, until: datetime | None = None,
                        limit: int = Query(50, ge=1, le=500),
                        me: User = Depends(require_capability(Capability.SEARCH))) -> SearchGrant:
    """The search's parameters, checked, and the ``search`` event with all of them, before it runs."""
    scope = await asyncio.to_thread(scope_of, services.db, me)
    query = SearchQuery(q, user, connection, protocol, source, since, until, limit, scope.connection_ids)
    await record_read(services, request, me, "search", None,
                      {"q": q, "user": user, "connection": connection, "protocol": protocol, "source": source,
                       "since": since.isoformat() if since else None,
                       "until": until.isoformat() if until else None})
    return SearchGrant(me, query)


search_access.session_access = AccessSpec(Capability.SEARCH, "search", False)
