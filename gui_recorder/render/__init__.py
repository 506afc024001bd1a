"""Render: recordings -> frames -> seekable video, thumbnails and a poster.

    recording ──read_instructions──> Display (layers, streams, cursor)
              ──iter_frames──> (offset ms, frame, dirty rects) ──> WebM + sprite + poster
"""

from gui_recorder.render.display import Display
from gui_recorder.render.frames import StreamReport, iter_frames, read_instructions
from gui_recorder.render.video import RenderResult, probe_recording, render_recording

__all__ = ["Display", "RenderResult", "StreamReport", "iter_frames", "probe_recording", "read_instructions",
           "render_recording"]
