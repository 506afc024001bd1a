"""Drain sealed spool segments to the object store; keep each manifest current.

Idempotent and resumable: the local ``manifest.json`` in a session's spool
directory says what is already uploaded, a segment is deleted locally only
after its upload and the manifest naming it are both written. When the store
is down the spool simply grows; uploads resume with backoff.

Supervised, and sessions are isolated (issue 10: one ``OSError`` killed the
task silently, one checksum mismatch stopped every later session):

* the store unreachable (``StorageError``) pauses the whole pass, with backoff;
* any other exception is caught for that session alone, which is retried with
  its own backoff (``stuck`` once it failed ``STUCK_AFTER`` times in a row);
* a session that can never be uploaded as it is (a segment that does not match
  its checksum, unreadable metadata) is quarantined with its reason: it stays
  in the spool for an operator and never blocks the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gui_recorder.errors import StorageError
from gui_recorder.recording.manifest import new_manifest
from gui_recorder.storage.keys import data_key_key, manifest_key, segment_key
from gui_recorder.recording.sealed import CHECKPOINTS_FILE, DATA_KEY_FILE, sealing_summary
from gui_recorder.recording.spool import QUARANTINE_FILE, SESSION_FILE, SegmentSpool, write_json_durably
from gui_recorder.storage import ObjectStore
from gui_recorder import telemetry

log = logging.getLogger(__name__)
LOCAL_MANIFEST = "manifest.json"
MAX_BACKOFF_SECONDS = 60.0
STUCK_AFTER = 3


class Unuploadable(Exception):
    """This session's spool cannot be uploaded as it is: quarantine it."""


@dataclass
class Retry:
    failures: int
    next_at: float  # monotonic
    last_error: str


class Uploader:
    def __init__(self, spool: SegmentSpool, store: ObjectStore,
                 on_complete: Callable[[str, dict], None] | None = None,
                 on_progress: Callable[[str, dict], None] | None = None,
                 is_live: Callable[[str], bool] | None = None,
                 recovery_reason: Callable[[str], tuple[str, bool, str | None]] | None = None,
                 clock=time.monotonic):
        self.spool = spool
        self.store = store
        self.on_complete = on_complete
        self.on_progress = on_progress
        # Without a service (offline use) nothing is live: unfinished directories are left alone.
        self.is_live = is_live
        self.recovery_reason = recovery_reason
        self._clock = clock
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_success_at: float | None = None
        self.uploaded_bytes = 0
        self.errors = 0  # failed attempts (any session), a counter
        self.retries: dict[str, Retry] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bucket_ready = False

    def kick(self) -> None:
        """Wake the uploader. Safe from any thread (segments are sealed in worker threads)."""
        loop = self._loop
        if loop is None:
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: the next start drains
            loop.call_soon_threadsafe(self._wake.set)

    def ages(self) -> tuple[float, float]:
        """Seconds since (the oldest sealed segment waiting for upload was sealed, the oldest byte in
        the spool not yet in the store was written: sealed or not, live sessions too), in one walk."""
        sealed = first_byte = None
        for d in self.spool.session_dirs():
            for p in (*d.glob("*.guac"), *d.glob("*.part")):
                with contextlib.suppress(OSError):
                    st = p.stat()
                    if p.suffix == ".guac":
                        sealed = st.st_mtime if sealed is None else min(sealed, st.st_mtime)
                    if st.st_size:
                        # A segment's first byte is about as old as the file (ctime at creation).
                        t = min(st.st_ctime, st.st_mtime)
                        first_byte = t if first_byte is None else min(first_byte, t)
        now = time.time()
        return tuple(0.0 if t is None else max(0.0, now - t) for t in (sealed, first_byte))

    def stuck(self) -> dict[str, str]:
        return {sid: r.last_error for sid, r in self.retries.items() if r.failures >= STUCK_AFTER}

    def state(self) -> dict:
        return {"last_error": self.last_error, "last_error_at": self.last_error_at,
                "last_success_at": self.last_success_at, "errors": self.errors,
                "retrying": {sid: {"failures": r.failures, "last_error": r.last_error}
                             for sid, r in self.retries.items()},
                "stuck": self.stuck(), "quarantined": self.spool.quarantined(),
                "oldest_unuploaded_seconds": self.ages()[1]}

    def _note_error(self, message: str) -> None:
        self.errors += 1
        self.last_error, self.last_error_at = message, time.time()

    def drain_once(self) -> int:
        """Upload everything sealed; returns the number of segments uploaded.

        Raises StorageError when the store cannot be reached (every session would fail alike);
        a failure of one session is recorded, scheduled for retry and does not stop the pass.
        """
        if not self._bucket_ready:
            self.store.ensure_bucket()
            self._bucket_ready = True
        count = 0
        failed = False
        now = self._clock()
        for session_dir in self.spool.session_dirs():
            session_id = session_dir.name
            if (session_dir / QUARANTINE_FILE).exists():
                continue
            retry = self.retries.get(session_id)
            if retry is not None and now < retry.next_at:
                continue
            try:
                count += self._drain_session(session_dir)
            except StorageError:
                raise
            except Unuploadable as exc:
                failed = True
                self._note_error(f"session {session_id} quarantined: {exc}")
                log.error("recording of session %s quarantined (kept in %s): %s", session_id, session_dir, exc)
                self.retries.pop(session_id, None)
                try:
                    self.spool.quarantine(session_dir, str(exc))
                except OSError as marker_error:  # cannot even mark it: retry it like any failure
                    self._schedule_retry(session_id, f"{exc}; and cannot quarantine it: {marker_error}")
            except Exception as exc:  # noqa: BLE001 - one session's failure must never stop the others
                failed = True
                self._schedule_retry(session_id, f"{type(exc).__name__}: {exc}")
            else:
                self.retries.pop(session_id, None)
        if not failed:
            self.last_error = None
        self.last_success_at = time.time()
        return count

    def _schedule_retry(self, session_id: str, message: str) -> None:
        previous = self.retries.get(session_id)
        failures = previous.failures + 1 if previous else 1
        delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (failures - 1))
        self.retries[session_id] = Retry(failures, self._clock() + delay, message)
        self._note_error(f"session {session_id}: {message}")
        log.error("recording upload of session %s failed (attempt %d, retry in %.0f s): %s",
                  session_id, failures, delay, message)

    def _read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise Unuploadable(f"{path.name} is not valid JSON: {exc}") from exc

    def _drain_session(self, session_dir: Path) -> int:
        session_id = session_dir.name
        if self.is_live is not None and not self.is_live(session_id) and self.spool.needs_recovery(session_dir):
            # Nobody writes here any more (the recording failed, or a crash): seal what is on disk.
            reason, interrupted, error = (self.recovery_reason(session_id) if self.recovery_reason
                                          else ("the gateway stopped while the session ran", True, None))
            self.spool.recover(session_dir, reason, interrupted=interrupted, recording_error=error)
        meta = self._read_json(session_dir / SESSION_FILE)
        sealed = sorted(session_dir.glob("*.guac"))
        if not sealed and not meta.get("finished"):
            # A live session between segments: nothing to do. (Going on put its data key again on each
            # pass until its first segment was stored: 50 PUTs a second at 50 new sessions.)
            return 0
        local = session_dir / LOCAL_MANIFEST
        manifest = self._read_json(local) if local.exists() else new_manifest(session_id, meta)
        manifest["meta"] = meta
        done = {s["index"] for s in manifest["segments"]}
        count = 0
        object_meta = {"session": session_id, "user": str(meta.get("user", "")),
                       "connection": str(meta.get("connection", "")), "tier": self.store.tier}
        self._seal_manifest(session_dir, manifest, object_meta)
        for path in sealed:
            info = self._read_json(path.with_suffix(".json"))
            if info["index"] not in done:
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != info["sha256"] or len(data) != info["size"]:
                    raise Unuploadable(f"spool segment {path} does not match its checksum: disk corruption")
                key = segment_key(session_id, info["index"])
                with telemetry.span("recording.upload", session_id=session_id, segment=info["index"],
                                    bytes=len(data), tier=self.store.tier):
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
            # Complete: nothing more will ever be added. An interrupted or failed recording is complete
            # too (it is evidence, rendered and indexed like any other); the manifest says how it ended.
            manifest["complete"] = True
            manifest["interrupted"] = bool(meta.get("interrupted", False))
            manifest["recording_error"] = meta.get("recording_error")
            manifest["bytes"] = sum(s["size"] for s in manifest["segments"])
            self._seal_manifest(session_dir, manifest, object_meta)
            self.store.put_json(manifest_key(session_id), manifest, object_meta)
            if self.on_complete:
                self.on_complete(session_id, manifest)
            shutil.rmtree(session_dir)
        return count

    def _seal_manifest(self, session_dir: Path, manifest: dict, object_meta: dict) -> None:
        """A sealed session: its wrapped data key in the store (once), its checkpoints in the manifest."""
        envelope_path = session_dir / DATA_KEY_FILE
        if not envelope_path.exists():
            return
        envelope = self._read_json(envelope_path)
        if "sealing" not in manifest:
            self.store.put_json(data_key_key(session_dir.name), envelope, object_meta)
        checkpoints_path = session_dir / CHECKPOINTS_FILE
        checkpoints = self._read_json(checkpoints_path) if checkpoints_path.exists() else []
        manifest["sealing"] = {**sealing_summary(envelope, checkpoints, None),
                               "data_key": data_key_key(session_dir.name)}

    async def run(self, interval: float = 1.0) -> None:
        """Drain forever; back off while the store is unreachable. Only cancellation ends it."""
        self._loop = asyncio.get_running_loop()
        delay = interval
        while True:
            try:
                await asyncio.to_thread(self.drain_once)
                delay = interval
            except asyncio.CancelledError:
                raise
            except StorageError as exc:
                self._note_error(str(exc))
                log.warning("recording upload delayed (spool keeps the data): %s", exc)
                delay = min(delay * 2, 30.0)
            except Exception as exc:  # noqa: BLE001 - supervised: log, back off, go on
                self._note_error(f"{type(exc).__name__}: {exc}")
                log.exception("recording upload pass failed; retrying")
                delay = min(delay * 2, 30.0)
            if self.retries:
                # Come back when the earliest per-session retry is due.
                due = min(r.next_at for r in self.retries.values()) - self._clock()
                delay = max(0.05, min(delay, due))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
