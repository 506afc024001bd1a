"""Search across sessions and a session's text timeline.

Both go through ``gateway.access``: the search needs ``search`` and records
every query before it runs; the timeline needs ``session.view_all``.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request

from gui_recorder.gateway.access import SearchGrant, SessionGrant, search_access, session_access
from gui_recorder.errors import ForbiddenError
from gui_recorder.gateway import audit
from gui_recorder.gateway.auth import client_addr
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.guardrails.masking import mask_item, mask_timeline, password_entries, query_terms
from gui_recorder.vocabulary import Capability, has_capability
from gui_recorder import telemetry

router = APIRouter(tags=["search"])
TEXT = session_access(Capability.SESSION_VIEW_ALL, "text.view", collapse=True)


@router.get("/api/search")
def search(request: Request, services: ServicesDep, grant: SearchGrant = Depends(search_access),
           unmask: bool = False) -> dict:
    """Words, "phrases" and prefix* over typed and screen text; ranked; `<mark>` in snippets.

    Secrets are shown as ``[masked:kind]``; ``unmask=true`` (capability ``text.unmask``, audited) shows them.
    """
    q = grant.query
    _check_unmask(services, request, grant.user, unmask, None, {"q": q.q})
    terms = query_terms(q.q)
    with telemetry.span("search", limit=q.limit, source=q.source) as span:  # not the words: they may be secret
        hits = services.search_index.search(q.q, user=q.user, connection=q.connection, protocol=q.protocol,
                                            source=q.source, since=q.since, until=q.until, limit=q.limit,
                                            connections=q.connections)
        span.set_attribute("search.results", len(hits))
    results = []
    typed_passwords = {} if unmask else _typed_passwords(services, {h.session_id for h in hits if h.source == "typed"})
    for hit in hits:
        item = hit.to_dict()
        item["started_at"] = (hit.at - timedelta(milliseconds=hit.offset_ms)).isoformat()
        item["player_url"] = f"/player.html?session={hit.session_id}&t={hit.offset_ms}"
        if not unmask and hit.source == "typed" and hit.offset_ms in typed_passwords.get(hit.session_id, ()):
            item = {**item, "text": "[masked:password]", "snippet": "[masked:password]", "masked": True}
        results.append(item if unmask else mask_item(item, terms))
    return {"query": q.q, "count": len(results), "results": results}


@router.get("/api/sessions/{session_id}/text")
def session_text(request: Request, services: ServicesDep, grant: SessionGrant = Depends(TEXT),
                 unmask: bool = False) -> dict:
    """The session's text timeline: typed lines and screen text, by time; secrets masked unless ``unmask``."""
    session_id = grant.session.id
    _check_unmask(services, request, grant.user, unmask, session_id, {})
    entries = services.search_index.session_text(session_id)
    items = [{**e.to_dict(), "end_ms": e.last_seen_ms} for e in entries]
    if not unmask:
        items = mask_timeline(items)
    return {"session_id": session_id, "count": len(items), "items": items}


def _check_unmask(services, request: Request, user, unmask: bool, session_id: str | None, detail: dict) -> None:
    """Unmasking needs its own capability and is audited before anything is shown (issue 14)."""
    if not unmask:
        return
    if not has_capability(user.role, Capability.UNMASK):
        raise ForbiddenError(f"this needs the capability {Capability.UNMASK.value!r}, which the role "
                             f"{user.role!r} does not have")
    audit.record_event(services.db, user.username, "text.unmask", session_id, client_addr(request), detail)


def _typed_passwords(services, session_ids: set[str]) -> dict[str, set[int]]:
    """Per session, the offsets of typed lines that answer a password prompt (one timeline read each)."""
    return {sid: password_entries([e.to_dict() for e in services.search_index.session_text(sid)])
            for sid in session_ids}
