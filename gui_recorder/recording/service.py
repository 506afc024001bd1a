"""The gateway's recording service: one spool, one uploader, one recorder per session.

At start-up it seals what a crashed gateway left in the spool (those sessions
are marked interrupted) so that nothing recorded is ever lost, then drains the
spool to the object store in the background for as long as the gateway runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from gui_recorder.recording.recorder import SessionRecorder
from gui_recorder.recording.spool import SegmentSpool
from gui_recorder.recording.uploader import Uploader
from gui_recorder.settings import Settings
from gui_recorder.storage import ObjectStore

log = logging.getLogger(__name__)

ManifestHook = Callable[[str, dict], None]


class RecordingService:
    def __init__(self, settings: Settings, store: ObjectStore,
                 on_complete: ManifestHook | None = None, on_progress: ManifestHook | None = None):
        self.spool = SegmentSpool(settings.resolved_spool_dir, settings.segment_max_bytes,
                                  settings.segment_max_seconds)
        self.store = store
        self.uploader = Uploader(self.spool, store, on_complete=on_complete, on_progress=on_progress)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for session_dir in self.spool.session_dirs():
            # Sessions still open here belong to a gateway that died: their relays are gone.
            await asyncio.to_thread(self.spool.recover, session_dir, "gateway stopped during the session")
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

    def open(self, session_id: str, meta: dict) -> SessionRecorder:
        """A recorder for a new session. Raises RecordingError if the spool cannot be written."""
        return SessionRecorder(self.spool.open_session(session_id, meta), on_sealed=self.uploader.kick)
