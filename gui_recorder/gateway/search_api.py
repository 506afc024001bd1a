"""Search across sessions and a session's text timeline. Auditors and admins only; searches are audited."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request

from gui_recorder.db import User
from gui_recorder.db.models import SESSION_VIEWER_ROLES
from gui_recorder.gateway import audit
from gui_recorder.gateway.auth import client_addr, require_roles
from gui_recorder.gateway.sessions_api import visible_session

router = APIRouter(tags=["search"])
VIEWERS = require_roles(*SESSION_VIEWER_ROLES)


@router.get("/api/search")
async def search(request: Request, q: str = Query(..., max_length=500), user: str | None = None,
                 connection: str | None = None, protocol: str | None = None, source: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 limit: int = Query(50, ge=1, le=500), me: User = Depends(VIEWERS)) -> dict:
    """Words, "phrases" and prefix* over typed and screen text; ranked; `<mark>` in snippets."""
    app = request.app
    await asyncio.to_thread(audit.record_event, app.state.db, me.username, "search", None, client_addr(request),
                            {"q": q, "user": user, "connection": connection, "source": source,
                             "since": since.isoformat() if since else None,
                             "until": until.isoformat() if until else None})
    hits = await asyncio.to_thread(app.state.search_index.search, q, user=user, connection=connection,
                                   protocol=protocol, source=source, since=since, until=until, limit=limit)
    results = []
    for hit in hits:
        item = hit.to_dict()
        item["started_at"] = (hit.at - timedelta(milliseconds=hit.offset_ms)).isoformat()
        item["player_url"] = f"/player.html?session={hit.session_id}&t={hit.offset_ms}"
        results.append(item)
    return {"query": q, "count": len(results), "results": results}


@router.get("/api/sessions/{session_id}/text")
async def session_text(session_id: str, request: Request, me: User = Depends(VIEWERS)) -> dict:
    """The session's text timeline: typed lines and screen text, by time."""
    app = request.app
    await asyncio.to_thread(visible_session, app.state.db, me, session_id)
    entries = await asyncio.to_thread(app.state.search_index.session_text, session_id)
    items = [{**e.to_dict(), "end_ms": e.last_seen_ms} for e in entries]
    return {"session_id": session_id, "count": len(items), "items": items}
