"""Rendered media of a session: the video (with HTTP Range), thumbnails, poster, video facts.

The render worker publishes ``video-info.json`` last, after every other
object; until it exists the session has no video here (409: being rendered),
so nothing half-written is ever served. Reads go to whichever tier holds the
objects. Each route takes its session through ``gateway.access``: a viewer's
reads of one kind are one audit event per window, however many Range
requests or thumbnail hovers they take.
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from gui_recorder.errors import ConflictError, NotFoundError, TamperedError
from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.recording.reader import media_sealer
from gui_recorder.sealing.objects import HEADER, is_sealed, plain_size
from gui_recorder.sessions.tamper import mark_tampered
from gui_recorder.storage.keys import media_key
from gui_recorder.vocabulary import Capability
from gui_recorder.db import jobs

router = APIRouter(prefix="/api/sessions", tags=["media"])
VIDEO_INFO = session_access(Capability.SESSION_VIEW_ALL, "video_info.view", collapse=True)
VIDEO = session_access(Capability.SESSION_VIEW_ALL, "video.view", collapse=True)
THUMBNAILS = session_access(Capability.SESSION_VIEW_ALL, "thumbnails.view", collapse=True)
SPRITE = session_access(Capability.SESSION_VIEW_ALL, "sprite.view", collapse=True)
POSTER = session_access(Capability.SESSION_VIEW_ALL, "poster.view", collapse=True)
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _viewable(services: Services, grant: SessionGrant) -> dict:
    """The video's facts, once the render worker has published them (409 until then)."""
    session_id = grant.session.id
    if grant.session.tier == "deleted":  # forgotten (sessions.forget.forget_session): gone, not "not ready"
        raise NotFoundError(f"session {session_id} was deleted: its video no longer exists")
    try:
        return services.reader_store.get_json(media_key(session_id, "video-info.json"))
    except NotFoundError:
        video = grant.session.video or {}
        job = jobs.job_state(services.db, "render", session_id)
        if video.get("media_dropped") and (job is None or job.state == "done"):
            # A cold session whose media was dropped (Settings.cold_drop_media): opening it renders it again.
            jobs.enqueue(services.db, "render", session_id, again=True)
            job = jobs.job_state(services.db, "render", session_id)
        state = job.state if job else "not queued"
        detail = f" ({job.last_error})" if job and job.last_error else ""
        progress = video.get("render_progress")
        done = f", {progress:.0%} rendered" if isinstance(progress, (int, float)) and state == "running" else ""
        raise ConflictError(f"the video of session {session_id} is not ready: render job {state}{done}{detail}",
                            ) from None


def _sealer(services: Services, session_id: str):
    return media_sealer(services.reader_store, services.spool_root, session_id, services.keyring)


def _media(services: Services, grant: SessionGrant, name: str) -> bytes:
    """A rendered object, decrypted when sealed (issue 13); a tampered one is reported, never served."""
    session_id = grant.session.id
    data = services.reader_store.get_bytes(media_key(session_id, name))
    if not is_sealed(data):
        return data
    try:
        return _sealer(services, session_id).open_bytes(name, data)
    except TamperedError as exc:
        services.recordings.tampered_reads += 1
        mark_tampered(services.db, session_id, exc, f"serving its {name}", grant.user.username)
        raise


def _sealed_video(services: Services, grant: SessionGrant, key: str, head: bytes, start: int, length: int):
    """The plaintext range of a sealed video, decrypted chunk by chunk as it is streamed."""
    session_id = grant.session.id
    sealer = _sealer(services, session_id)
    store = services.reader_store
    try:
        yield from sealer.open_range("video.webm", lambda offset, n: store.get_bytes(key, offset, n),
                                     plain_size(head), start, length)
    except TamperedError as exc:
        services.recordings.tampered_reads += 1
        mark_tampered(services.db, session_id, exc, "serving its video", grant.user.username)
        raise


# Plain def routes: object-store reads, which FastAPI runs in its thread pool. The bodies of the
# streamed ones are sync iterators, which Starlette also drains in the thread pool.

@router.get("/{session_id}/video-info")
def video_info(services: ServicesDep, grant: SessionGrant = Depends(VIDEO_INFO)) -> dict:
    """Duration, size, idle stretches and keyframe spacing of the rendered video."""
    return _viewable(services, grant)


@router.get("/{session_id}/video", responses={200: {"content": {"video/webm": {}}}, 206: {}})
def video(request: Request, services: ServicesDep, grant: SessionGrant = Depends(VIDEO)) -> Response:
    """The WebM video; honours `Range` so browsers seek without downloading everything."""
    _viewable(services, grant)
    store = services.reader_store
    key = media_key(grant.session.id, "video.webm")
    size = store.stat(key).size
    head = store.get_bytes(key, 0, HEADER) if size >= HEADER else b""
    sealed = is_sealed(head)
    if sealed:
        size = plain_size(head)

    def body(start: int = 0, length: int | None = None):
        if sealed:
            return _sealed_video(services, grant, key, head, start, size - start if length is None else length)
        return store.iter_bytes(key, start, length or 0)

    headers = {"Accept-Ranges": "bytes", "Content-Type": "video/webm", "Cache-Control": "private, max-age=3600"}
    range_header = request.headers.get("range")
    if not range_header:
        return StreamingResponse(body(), headers={**headers, "Content-Length": str(size)})
    match = RANGE.match(range_header.strip())
    if match is None or not any(match.groups()):
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    length = end - start + 1
    return StreamingResponse(body(start, length), status_code=206,
                             headers={**headers, "Content-Length": str(length),
                                      "Content-Range": f"bytes {start}-{end}/{size}"})


@router.get("/{session_id}/thumbnails")
def thumbnails(services: ServicesDep, grant: SessionGrant = Depends(THUMBNAILS), t: int | None = None) -> Response:
    """The thumbnail index (JSON); with `?t=<ms>`, the one thumbnail for that moment (JPEG)."""
    info = _viewable(services, grant)
    session_id = grant.session.id
    index = json.loads(_media(services, grant, "thumbnails.json"))
    if t is None:
        index["sprite_url"] = f"/api/sessions/{session_id}/thumbnails/sprite.jpg"
        return Response(content=_json(index), media_type="application/json")
    items = index.get("items") or []
    if not items:
        raise NotFoundError(f"session {session_id} has no thumbnails")
    best = min(items, key=lambda item: abs(item["t_ms"] - t))
    sprite = _media(services, grant, "sprite.jpg")
    return Response(content=_crop_jpeg(sprite, best), media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=86400", "X-Thumbnail-Time": str(best["t_ms"]),
                             "X-Video-Duration": str(info.get("duration_ms", ""))})


@router.get("/{session_id}/thumbnails/sprite.jpg")
def sprite(services: ServicesDep, grant: SessionGrant = Depends(SPRITE)) -> Response:
    _viewable(services, grant)
    data = _media(services, grant, "sprite.jpg")
    return Response(content=data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/{session_id}/poster")
def poster(services: ServicesDep, grant: SessionGrant = Depends(POSTER)) -> Response:
    _viewable(services, grant)
    data = _media(services, grant, "poster.jpg")
    return Response(content=data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _crop_jpeg(sprite: bytes, item: dict) -> bytes:
    image = cv2.imdecode(np.frombuffer(sprite, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise NotFoundError("the thumbnail sprite cannot be decoded")
    x, y, w, h = (int(item[k]) for k in ("x", "y", "w", "h"))
    ok, out = cv2.imencode(".jpg", image[y:y + h, x:x + w], [cv2.IMWRITE_JPEG_QUALITY, 85])
    return out.tobytes()
