"""Review and evidence: auditors mark sessions reviewed and export an evidence bundle.

The bundle is one zip: the recording exactly as stored, its manifest, the
video if rendered, the text timeline if indexed, the session's facts and
reviews, and SHA256SUMS over all of it, so a third party can check integrity
without our software.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from gui_recorder.db import Database, Session, User
from gui_recorder.db.models import SESSION_VIEWER_ROLES, Review
from gui_recorder.errors import NotFoundError
from gui_recorder.gateway import audit
from gui_recorder.gateway.auth import client_addr, require_roles
from gui_recorder.gateway.sessions_api import _out, reviews_of, visible_session
from gui_recorder.recording.manifest import manifest_key
from gui_recorder.recording.reader import iter_recording

router = APIRouter(prefix="/api/sessions", tags=["review"])
VIEWERS = require_roles(*SESSION_VIEWER_ROLES)


class ReviewIn(BaseModel):
    comment: str = Field("", max_length=5000)


class ReviewOut(BaseModel):
    reviewed_by: str
    reviewed_at: str
    comment: str


def add_review(db: Database, session_id: str, username: str, comment: str) -> ReviewOut:
    at = db.now()
    with db.session() as s:
        s.add(Review(session_id=session_id, reviewed_by=username, reviewed_at=at, comment=comment))
    return ReviewOut(reviewed_by=username, reviewed_at=at.isoformat(), comment=comment)


@router.post("/{session_id}/review", response_model=ReviewOut, status_code=201)
async def review(session_id: str, body: ReviewIn, request: Request, user: User = Depends(VIEWERS)) -> ReviewOut:
    db = request.app.state.db
    await asyncio.to_thread(visible_session, db, user, session_id)
    out = await asyncio.to_thread(add_review, db, session_id, user.username, body.comment)
    await asyncio.to_thread(audit.record_event, db, user.username, "session.review", session_id,
                            client_addr(request), {"comment": body.comment[:200]})
    return out


def build_bundle(app, session_id: str, target: Path) -> None:
    db, store = app.state.db, app.state.reader_store
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None:
        raise NotFoundError(f"no session {session_id}")
    sums: list[str] = []

    def add(zf: zipfile.ZipFile, name: str, chunks) -> None:
        digest = hashlib.sha256()
        with zf.open(name, "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        sums.append(f"{digest.hexdigest()}  {name}")

    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        add(zf, "recording.guac", iter_recording(store, app.state.recordings.spool.root, session_id))
        try:
            add(zf, "manifest.json", [store.get_bytes(manifest_key(session_id))])
        except NotFoundError:
            pass
        video = (row.video or {}).get("video_key")
        if video:
            add(zf, "video.webm", store.iter_bytes(video))
        facts = _out(row, reviews_of(db, session_id)).model_dump(mode="json")
        add(zf, "session.json", [json.dumps(facts, indent=2).encode()])
        timeline = app.state.text_timeline(session_id) if hasattr(app.state, "text_timeline") else None
        if timeline is not None:
            add(zf, "text-timeline.json", [json.dumps(timeline, indent=2).encode()])
        zf.writestr("SHA256SUMS", "\n".join(sums) + "\n")


@router.get("/{session_id}/export", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}}})
async def export(session_id: str, request: Request, user: User = Depends(VIEWERS)) -> FileResponse:
    """The evidence bundle (zip): recording, manifest, video, text timeline, facts, SHA256SUMS."""
    db = request.app.state.db
    await asyncio.to_thread(visible_session, db, user, session_id)
    tmp = Path(tempfile.mkstemp(prefix="evidence-", suffix=".zip")[1])
    try:
        await asyncio.to_thread(build_bundle, request.app, session_id, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(audit.record_event, db, user.username, "session.export", session_id,
                            client_addr(request), {"bytes": tmp.stat().st_size})
    return FileResponse(tmp, media_type="application/zip", filename=f"session-{session_id}.zip",
                        background=BackgroundTask(tmp.unlink, missing_ok=True))
