"""Recording: tee the relayed protocol into fsync'd spool segments, upload them.

    gateway relay ──tee──> SessionRecorder ──> SegmentSpool (local, fsync'd)
                                                  └──> Uploader ──> object store
                                                                    (segments + manifest)
"""

from gui_recorder.recording.recorder import SessionRecorder
from gui_recorder.recording.spool import SegmentSpool, SpoolSession
from gui_recorder.recording.uploader import Uploader

__all__ = ["SegmentSpool", "SessionRecorder", "SpoolSession", "Uploader"]
