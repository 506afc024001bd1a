"""Render: recordings -> frames -> seekable video, thumbnails and a poster.

    recording ──read_instructions──> Display (layers.py, paths.py, streams.py; handlers.py per opcode)
              ──iter_frames──> (offset ms, frame, dirty rects) ──video.py──> WebM + sprite + poster
"""

from gui_recorder.render.display import Display, Rect
from gui_recorder.render.handlers import apply
from gui_recorder.render.frames import LiveDisplay, StreamReport, iter_frames, read_instructions, screen_frames
from gui_recorder.render.video import RenderResult, probe_recording, render_recording

__all__ = ["Display", "LiveDisplay", "Rect", "RenderResult", "StreamReport", "apply", "iter_frames", "probe_recording",
           "read_instructions", "render_recording", "screen_frames"]
