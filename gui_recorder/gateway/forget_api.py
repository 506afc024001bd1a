"""``DELETE /api/sessions/{id}``: an admin forgets a session before its retention ends.

The route only translates HTTP to ``sessions.forget.forget_session``, the one
function that deletes a session (retention calls it too): objects in every
tier, rendered media, the spool copy, index documents, keys on the row, and an
audit event with who and why. A session under legal hold, still live, or with
a job writing its outputs is refused with 409.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.gateway.auth import client_addr
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.vocabulary import Capability
from gui_recorder.sessions.forget import forget_session

router = APIRouter(tags=["operations"])
# An action: forget_session records its own event, with who and why.
DELETE = session_access(Capability.SESSION_DELETE, None)


class DeletedOut(BaseModel):
    session_id: str
    tier: str
    objects_deleted: int
    documents_deleted: int


@router.delete("/api/sessions/{session_id}", response_model=DeletedOut)
def delete_session(session_id: str, request: Request, services: ServicesDep,
                   reason: str = Query(min_length=1, max_length=500,
                                       description="why it is deleted; kept in the audit log"),
                   grant: SessionGrant = Depends(DELETE)) -> DeletedOut:
    gone = forget_session(services.db, services.tiering, services.search_index, session_id,
                          by=grant.user.username, reason=reason, client_addr=client_addr(request),
                          spool_root=services.spool_root)
    return DeletedOut(session_id=session_id, tier="deleted", objects_deleted=gone.objects,
                      documents_deleted=gone.documents)
