"""Drain sealed spool segments to the object store; keep each manifest current.

Idempotent and resumable: the local ``manifest.json`` in a session's spool
directory says what is already uploaded, a segment is deleted locally only
after its upload and the manifest naming it are both written. When the store
is down the spool simply grows; uploads resume with backoff.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from gui_recorder.errors import GuiRecorderError, RecordingError, StorageError
from gui_recorder.recording.manifest import manifest_key, new_manifest, segment_key
from gui_recorder.recording.spool import SESSION_FILE, SegmentSpool, write_json_durably
from gui_recorder.storage import ObjectStore

log = logging.getLogger(__name__)
LOCAL_MANIFEST = "manifest.json"


class Uploader:
    def __init__(self, spool: SegmentSpool, store: ObjectStore,
                 on_complete: Callable[[str, dict], None] | None = None,
                 on_progress: Callable[[str, dict], None] | None = None):
        self.spool = spool
        self.store = store
        self.on_complete = on_complete
        self.on_progress = on_progress
        self.last_error: str | None = None
        self.uploaded_bytes = 0
        self._wake = asyncio.Event()
        self._bucket_ready = False

    def kick(self) -> None:
        self._wake.set()

    def lag_seconds(self) -> float:
        """Age of the oldest sealed segment still waiting for upload."""
        oldest = min((p.stat().st_mtime for d in self.spool.session_dirs() for p in d.glob("*.guac")), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def drain_once(self) -> int:
        """Upload everything sealed; returns the number of segments uploaded. Raises StorageError."""
        if not self._bucket_ready:
            self.store.ensure_bucket()
            self._bucket_ready = True
        count = 0
        for session_dir in self.spool.session_dirs():
            count += self._drain_session(session_dir)
        self.last_error = None
        return count

    def _drain_session(self, session_dir: Path) -> int:
        session_id = session_dir.name
        meta = json.loads((session_dir / SESSION_FILE).read_text())
        local = session_dir / LOCAL_MANIFEST
        manifest = json.loads(local.read_text()) if local.exists() else new_manifest(session_id, meta)
        manifest["meta"] = meta
        done = {s["index"] for s in manifest["segments"]}
        count = 0
        object_meta = {"session": session_id, "user": str(meta.get("user", "")),
                       "connection": str(meta.get("connection", "")), "tier": "hot"}
        for path in sorted(session_dir.glob("*.guac")):
            info = json.loads(path.with_suffix(".json").read_text())
            if info["index"] not in done:
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != info["sha256"] or len(data) != info["size"]:
                    raise RecordingError(f"spool segment {path} does not match its checksum: disk corruption")
                key = segment_key(session_id, info["index"])
                self.store.put_bytes(key, data, "application/vnd.guacamole.recording", object_meta)
                manifest["segments"].append({**info, "key": key})
                manifest["segments"].sort(key=lambda s: s["index"])
                manifest["bytes"] = sum(s["size"] for s in manifest["segments"])
                self.store.put_json(manifest_key(session_id), manifest, object_meta)
                write_json_durably(local, manifest)
                self.uploaded_bytes += len(data)
                count += 1
                if self.on_progress:
                    self.on_progress(session_id, manifest)
            path.unlink()
            path.with_suffix(".json").unlink(missing_ok=True)
        if meta.get("finished") and not any(session_dir.glob("*.part")):
            manifest["complete"] = not meta.get("interrupted", False)
            manifest["bytes"] = sum(s["size"] for s in manifest["segments"])
            self.store.put_json(manifest_key(session_id), manifest, object_meta)
            if self.on_complete:
                self.on_complete(session_id, manifest)
            shutil.rmtree(session_dir)
        return count

    async def run(self, interval: float = 1.0) -> None:
        """Drain forever; back off while the store is unreachable."""
        delay = interval
        while True:
            try:
                await asyncio.to_thread(self.drain_once)
                delay = interval
            except StorageError as exc:
                self.last_error = str(exc)
                log.warning("recording upload delayed (spool keeps the data): %s", exc)
                delay = min(delay * 2, 30.0)
            except GuiRecorderError as exc:
                self.last_error = str(exc)
                log.error("recording upload failed: %s", exc)
                delay = min(delay * 2, 30.0)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
