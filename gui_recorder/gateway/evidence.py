"""Routes for review and evidence: auditors mark sessions reviewed and export the evidence bundle.

The bundle itself is built by ``gui_recorder.sessions.evidence``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from gui_recorder.gateway import audit
from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.gateway.auth import client_addr
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.guardrails.masking import mask_timeline
from gui_recorder.sessions.evidence import build_bundle
from gui_recorder.sessions.rows import ReviewOut, add_review
from gui_recorder.vocabulary import Capability

router = APIRouter(prefix="/api/sessions", tags=["review"])
REVIEW = session_access(Capability.SESSION_REVIEW, None)  # an action: it records its own event, with the comment
# A bundle is a whole copy of the evidence leaving the system: recorded every time, before it is built.
EXPORT = session_access(Capability.EXPORT, "session.export")


class ReviewIn(BaseModel):
    comment: str = Field("", max_length=5000)


@router.post("/{session_id}/review", response_model=ReviewOut, status_code=201)
def review(body: ReviewIn, request: Request, services: ServicesDep,
           grant: SessionGrant = Depends(REVIEW)) -> ReviewOut:
    db, user, session_id = services.db, grant.user, grant.session.id
    out = add_review(db, session_id, user.username, body.comment)
    audit.record_event(db, user.username, "session.review", session_id, client_addr(request),
                       {"comment": body.comment[:200]})
    return out


@router.get("/{session_id}/export", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}}})
def export(services: ServicesDep, grant: SessionGrant = Depends(EXPORT)) -> FileResponse:
    """The evidence bundle (zip): recording, manifest, video, text timeline, facts, SHA256SUMS."""
    session_id = grant.session.id
    fd, name = tempfile.mkstemp(prefix="evidence-", suffix=".zip")
    os.close(fd)  # build_bundle opens the file by name; the descriptor would leak, one per export
    tmp = Path(name)
    try:
        # The bundle's timeline shows secrets masked; the recording inside it keeps the original.
        build_bundle(services.db, services.reader_store, services.spool_root, session_id, tmp,
                     lambda sid: mask_timeline(services.text_timeline(sid)), services.recordings.sealing)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return FileResponse(tmp, media_type="application/zip", filename=f"session-{session_id}.zip",
                        background=BackgroundTask(tmp.unlink, missing_ok=True))
