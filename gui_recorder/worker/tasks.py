"""The worker's tasks on one session: render its video, extract and index its text.

Each task reads the recording from whichever tier holds it into a local
temporary file, works there, and publishes its outputs only when all of them
exist (the render task writes ``video-info.json`` last).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from gui_recorder.db import Connection, Session
from gui_recorder.errors import NotFoundError, TamperedError
from gui_recorder.protocol import Parser
from gui_recorder.storage.keys import file_key, kept_file_name, media_key
from gui_recorder.recording.reader import iter_recording, media_sealer
from gui_recorder.sealing.provider import keyring as configured_keyring
from gui_recorder.sessions import rows
from gui_recorder.sessions.tamper import mark_tampered
from gui_recorder.vocabulary import JobKind
from gui_recorder.worker.runner import Context

_MIMETYPE = re.compile(r"^[\w.+-]{1,64}/[\w.+-]{1,64}$")  # what a stream's mimetype must look like to be stored
IDLE_MS = 5000  # a stretch without drawing or input longer than this is "idle" for the player


def _keyring(ctx: Context):
    """The key ring that unwraps sealed recordings, made once per worker context (a token session is dear)."""
    ring = ctx.__dict__.get("_keyring")
    if ring is None:
        ring = ctx.__dict__["_keyring"] = configured_keyring(ctx.settings)
    return ring


def fetch_recording(ctx: Context, session_id: str, target: Path) -> None:
    spool = ctx.settings.resolved_spool_dir
    with open(target, "wb") as out:
        try:
            for chunk in iter_recording(ctx.reader, spool, session_id, _keyring(ctx)):
                out.write(chunk)
        except TamperedError as exc:  # never rendered or indexed as if whole
            mark_tampered(ctx.db, session_id, exc, "rendering or indexing it")
            raise
    if target.stat().st_size == 0:
        raise NotFoundError(f"session {session_id} has an empty recording")


def idle_stretches(recording: Path, idle_ms: int = IDLE_MS) -> tuple[list[list[int]], int]:
    """Stretches (start, end offsets in ms) with no drawing and no input; and the duration."""
    parser = Parser()
    first = last_activity = last_ts = None
    drawn = False
    idle: list[list[int]] = []
    with open(recording, "rb") as f:
        while chunk := f.read(1 << 20):
            for ins in parser.feed(chunk):
                op = ins[0]
                if op == "sync" and len(ins) > 1 and ins[1].lstrip("-").isdigit():
                    ts = int(ins[1])
                    first = ts if first is None else first
                    last_ts = ts
                    if drawn:
                        if last_activity is not None and ts - last_activity > idle_ms:
                            idle.append([last_activity - first, ts - first])
                        last_activity, drawn = ts, False
                    elif last_activity is None:
                        last_activity = ts
                elif op in ("key", "mouse") and len(ins) >= 4 and last_ts is not None:
                    drawn = True  # input counts as activity at the next frame
                elif op not in ("sync", "nop", "gr-client"):
                    drawn = True
    if first is None:
        return [], 0
    if last_activity is not None and last_ts - last_activity > idle_ms:
        idle.append([last_activity - first, last_ts - first])
    return idle, last_ts - first


def render_task(ctx: Context, session_id: str) -> None:
    from gui_recorder.render import render_recording
    from gui_recorder.render.video import DEFAULT_PROFILE, ON_DEMAND_PROFILE

    with tempfile.TemporaryDirectory(prefix="gr-render-") as tmp:
        work = Path(tmp)
        recording = work / "recording.guac"
        fetch_recording(ctx, session_id, recording)
        outputs = {name: work / name for name in ("video.webm", "sprite.jpg", "thumbnails.json", "poster.jpg")}
        previous = rows_video(ctx, session_id)
        # A re-render (a cold session opened after its media was dropped) reports its progress on the
        # row, which the player shows while it waits (issue 19).
        report = _progress_reporter(ctx, session_id, previous) if previous.get("media_dropped") else None
        result = render_recording(recording, outputs["video.webm"], sprite_path=outputs["sprite.jpg"],
                                  sprite_index_path=outputs["thumbnails.json"], poster_path=outputs["poster.jpg"],
                                  progress=report, profile=ON_DEMAND_PROFILE if report else DEFAULT_PROFILE)
        idle, _ = idle_stretches(recording)
        meta = _object_meta(ctx, session_id)
        types = {"video.webm": "video/webm", "sprite.jpg": "image/jpeg", "thumbnails.json": "application/json",
                 "poster.jpg": "image/jpeg"}
        # A sealed session's media is sealed with its data key (issue 13); video-info.json holds figures only.
        sealer = media_sealer(ctx.reader, ctx.settings.resolved_spool_dir, session_id, _keyring(ctx))
        for name, path in outputs.items():
            if sealer is not None:
                sealer.seal_file(name, path, path.with_name(name + ".sealed"))
                path = path.with_name(name + ".sealed")
            ctx.hot.put_file(media_key(session_id, name), path, types[name], meta)
        info = {"duration_ms": result.duration_ms, "width": result.width, "height": result.height,
                "frames": result.frames_encoded, "bytes": outputs["video.webm"].stat().st_size,
                "idle": idle, "keyframe_interval_ms": getattr(result, "keyframe_interval_ms", None),
                "keyframe_max_frames": result.keyframe_max_frames, "codec_profile": result.profile,
                "unknown_instructions": dict(getattr(result, "unknown", {}) or {}),
                "malformed_instructions": getattr(result, "malformed", 0),
                # Every media object, for the capacity planner (recording and media bytes apart).
                "media_bytes": sum(path.stat().st_size for path in outputs.values())}
        # Last: its presence is what makes the video visible to the API.
        ctx.hot.put_bytes(media_key(session_id, "video-info.json"), json.dumps(info).encode(), "application/json",
                          meta)
    _update(ctx, session_id, video={**info, "video_key": media_key(session_id, "video.webm")})


def index_recording(index, session, recording, engine=None, keep_file=None) -> dict:
    """The text stage on a whole recording (frames drawn by render), then the index.

    ``index`` is a ``SearchIndex``, ``session`` its ``SessionMeta``;
    ``recording`` is a path, bytes or instructions; ``engine`` defaults to
    tesseract. ``keep_file`` (a callable) receives each transferred file with its bytes, when the
    connection keeps them. Indexing again replaces the session's documents. Returns counts
    for the job log.
    """
    from gui_recorder.render import screen_frames
    from gui_recorder.text.ocr import extract_text

    result = extract_text(recording, frames=screen_frames, engine=engine, keep_files=keep_file is not None)
    kept = 0
    for transfer in result.transfers:
        if keep_file is not None and transfer.data is not None:
            keep_file(transfer)
            kept += 1
    stored = index.index_session(session, result.typed, result.screen, result.printed, result.transfers)
    return {"typed_lines": len(result.typed), "screen_items": len(result.screen),
            "printed_lines": len(result.printed), "transfers": len(result.transfers), "files_kept": kept,
            "documents": stored,
            "ocr_calls": result.stats.calls, "rows_reused": result.stats.rows_reused, "damaged": result.damaged}


def _policy(ctx: Context, connection_id: str | None) -> dict:
    if not connection_id:
        return {}
    with ctx.db.session() as s:
        row = s.get(Connection, connection_id)
    return dict(row.recording_policy or {}) if row is not None else {}


def ocr_languages(ctx: Context, connection_id: str | None) -> str:
    """The tesseract languages of a connection's screens: its recording policy's, else the setting."""
    return _policy(ctx, connection_id).get("ocr_languages") or ctx.settings.ocr_languages


def index_task(ctx: Context, session_id: str) -> None:
    """Typed lines and screen text (OCR) of the whole session, replacing any live-indexed text."""
    from datetime import UTC, datetime

    from gui_recorder.index import SearchIndex, SessionMeta
    from gui_recorder.text.engine import TesseractEngine

    with ctx.db.session() as s:
        row = s.get(Session, session_id)
    if row is None:
        raise NotFoundError(f"no session {session_id}")
    started = datetime.fromtimestamp(row.wall_start / 1000, UTC) if row.wall_start else row.started_at
    meta = SessionMeta(session_id, row.username, row.connection_id, row.protocol, started)
    with tempfile.TemporaryDirectory(prefix="gr-index-") as tmp:
        recording = Path(tmp) / "recording.guac"
        fetch_recording(ctx, session_id, recording)
        with SearchIndex.from_settings(ctx.settings) as index:
            keep = None
            if _policy(ctx, row.connection_id).get("keep_transferred_files"):
                object_meta = _object_meta(ctx, session_id)
                # A kept file is the session's content like its keystrokes: sealed with its data key.
                sealer = media_sealer(ctx.reader, ctx.settings.resolved_spool_dir, session_id, _keyring(ctx))

                def keep(transfer) -> None:
                    mimetype = transfer.mimetype if _MIMETYPE.match(transfer.mimetype) else "application/octet-stream"
                    key = file_key(session_id, transfer.sha256)
                    data = transfer.data if sealer is None else sealer.seal_bytes(kept_file_name(key), transfer.data)
                    ctx.hot.put_bytes(key, data, mimetype, object_meta)

            index_recording(index, meta, recording, TesseractEngine(lang=ocr_languages(ctx, row.connection_id)),
                            keep)


def rows_video(ctx: Context, session_id: str) -> dict:
    with ctx.db.session() as s:
        row = s.get(Session, session_id)
        return dict(row.video or {}) if row is not None else {}


def _progress_reporter(ctx: Context, session_id: str, video: dict):
    last = [0.0]

    def report(fraction: float) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = fraction
            _update(ctx, session_id, video={**video, "render_progress": round(fraction, 3)})

    return report


def _object_meta(ctx: Context, session_id: str) -> dict[str, str]:
    return rows.object_metadata(ctx.db, session_id, ctx.hot.tier)


def _update(ctx: Context, session_id: str, **fields) -> None:
    try:
        rows.update_session(ctx.db, session_id, **fields)
    except NotFoundError:
        pass  # forgotten while its job ran: nothing to record it on


TASKS = {JobKind.RENDER: render_task, JobKind.INDEX: index_task}
