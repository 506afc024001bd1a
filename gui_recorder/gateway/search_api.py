"""Search across sessions and a session's text timeline.

Both go through ``gateway.access``: the search needs ``search`` and records
every query before it runs; the timeline needs ``session.view_all``.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends

from gui_recorder.gateway.access import SearchGrant, SessionGrant, search_access, session_access
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.vocabulary import Capability
from gui_recorder import telemetry

router = APIRouter(tags=["search"])
TEXT = session_access(Capability.SESSION_VIEW_ALL, "text.view", collapse=True)


@router.get("/api/search")
def search(services: ServicesDep, grant: SearchGrant = Depends(search_access)) -> dict:
    """Words, "phrases" and prefix* over typed and screen text; ranked; `<mark>` in snippets."""
    q = grant.query
    with telemetry.span("search", limit=q.limit, source=q.source) as span:  # not the words: they may be secret
        hits = services.search_index.search(q.q, user=q.user, connection=q.connection, protocol=q.protocol,
                                            source=q.source, since=q.since, until=q.until, limit=q.limit,
                                            connections=q.connections)
        span.set_attribute("search.results", len(hits))
    results = []
    for hit in hits:
        item = hit.to_dict()
        item["started_at"] = (hit.at - timedelta(milliseconds=hit.offset_ms)).isoformat()
        item["player_url"] = f"/player.html?session={hit.session_id}&t={hit.offset_ms}"
        results.append(item)
    return {"query": q.q, "count": len(results), "results": results}


@router.get("/api/sessions/{session_id}/text")
def session_text(services: ServicesDep, grant: SessionGrant = Depends(TEXT)) -> dict:
    """The session's text timeline: typed lines and screen text, by time."""
    session_id = grant.session.id
    entries = services.search_index.session_text(session_id)
    items = [{**e.to_dict(), "end_ms": e.last_seen_ms} for e in entries]
    return {"session_id": session_id, "count": len(items), "items": items}
