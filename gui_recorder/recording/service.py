"""The gateway's recording service: one spool, one supervised uploader, one recorder per session.

It knows which spool directories have a live writer. Every other unfinished
directory is sealed and marked finished before upload: at start-up that is
what a killed gateway left (``interrupted``); while running, it is a session
whose recording failed (a full disk), sealed as soon as the disk takes writes
again, so the failed session's recording is uploaded, rendered and indexed
like any other: it is evidence too (issue 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gui_recorder.errors import RecordingError
from gui_recorder.recording.recorder import SessionRecorder
from gui_recorder.recording.spool import SegmentSpool
from gui_recorder.recording.uploader import Uploader
from gui_recorder.sealing.keys import SealingKeys
from gui_recorder.sealing.provider import sealing_keys
from gui_recorder.settings import Settings
from gui_recorder.storage import ObjectStore

log = logging.getLogger(__name__)

ManifestHook = Callable[[str, dict], None]
INTERRUPTED_REASON = "the gateway stopped while the session ran"


class RecordingService:
    def __init__(self, settings: Settings, store: ObjectStore,
                 on_complete: ManifestHook | None = None, on_progress: ManifestHook | None = None,
                 sealing: SealingKeys | None = None):
        # Every recording is sealed (issue 13): the keys the settings name, created under var/keys by default.
        self.sealing = sealing or sealing_keys(settings)
        self.spool = SegmentSpool(settings.resolved_spool_dir, settings.segment_max_bytes,
                                  settings.segment_max_seconds, sealing=self.sealing)
        self.tampered_reads = 0  # reads of a sealed recording that failed its checks (a security metric)
        self.store = store
        self.live: set[str] = set()  # sessions whose relay still writes their spool directory
        self.failed: dict[str, str] = {}  # session id -> why its recording failed (until it is sealed)
        self.recording_failures = 0  # sessions whose recording failed since start (an alert metric)
        self.last_recording_failure: tuple[float, str] | None = None
        self.uploader = Uploader(self.spool, store, on_complete=on_complete, on_progress=on_progress,
                                 is_live=self.live.__contains__, recovery_reason=self._recovery_reason)
        self._task: asyncio.Task | None = None

    def _recovery_reason(self, session_id: str) -> tuple[str, bool, str | None]:
        """(end reason, interrupted, recording error) for a directory without a live writer."""
        error = self.failed.get(session_id)
        if error is not None:
            return f"recording failed: {error}", False, error
        return INTERRUPTED_REASON, True, None

    async def start(self) -> None:
        # Nothing is live yet: every unfinished directory belongs to a gateway that died.
        for session_dir in self.spool.session_dirs():
            try:
                if self.spool.needs_recovery(session_dir):
                    await asyncio.to_thread(self.spool.recover, session_dir, INTERRUPTED_REASON)
            except (OSError, ValueError) as exc:
                # E.g. the disk is still full: the uploader retries it with the others.
                log.error("spool %s: cannot seal it at start-up (retried by the uploader): %s", session_dir, exc)
        self._task = asyncio.create_task(self.uploader.run(), name="recording-uploader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            # One last attempt; what remains stays in the spool for the next start.
            await asyncio.to_thread(self.uploader.drain_once)
        except Exception as exc:  # noqa: BLE001 - shutdown must go on; the spool keeps the data
            log.warning("recordings left in the spool at shutdown: %s", exc)

    def last_write(self, session_id: str) -> datetime | None:
        """When the session's spool was last written (its last recorded byte), if it is still here."""
        d = self.spool.root / session_id
        times = [p.stat().st_mtime for p in d.glob("*") if p.is_file()] if d.is_dir() else []
        return datetime.fromtimestamp(max(times), UTC) if times else None

    def running(self) -> bool:
        """The uploader task is alive (it is supervised: only ``stop`` ends it)."""
        return self._task is not None and not self._task.done()

    def open(self, session_id: str, meta: dict) -> SessionRecorder:
        """A recorder for a new session. Raises RecordingError if the spool cannot be written."""
        # Live before the directory exists: the uploader must never take a new session for a dead one.
        self.live.add(session_id)
        try:
            return SessionRecorder(self.spool.open_session(session_id, meta), on_sealed=self.uploader.kick)
        except RecordingError:
            self.live.discard(session_id)
            raise

    def recording_failed(self, session_id: str, exc: RecordingError) -> None:
        """The relay's hook at the first failed write of a session."""
        self.recording_failures += 1
        self.last_recording_failure = (time.time(), f"session {session_id}: {exc}")
        self.failed[session_id] = str(exc)

    def closed(self, session_id: str, recording_error: str | None = None) -> None:
        """The relay is done with the directory (finished, or abandoned after a failure: sealed later)."""
        if recording_error is not None:
            self.failed.setdefault(session_id, recording_error)
        self.live.discard(session_id)
        self.uploader.kick()
