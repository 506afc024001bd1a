"""Recording -> WebM (VP9, variable frame rate), thumbnail sprite with index, poster.

Frame times come from the `sync` timestamps (time base 1 ms), and only frames
where something changed are encoded, so idle minutes cost almost nothing. A
keyframe is forced whenever 5 s of media time have passed since the last one,
so a browser seeks anywhere by decoding at most 5 s. The last frame is repeated
at the final `sync` so that the video lasts exactly as long as the session.
Outputs are written under temporary names and renamed at the end: nothing
half-written is ever visible.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from gui_recorder.errors import RenderError
from gui_recorder.render.display import Display
from gui_recorder.render.frames import StreamReport, file_chunks, iter_frames, read_instructions

KEYFRAME_MS = 5000
# Frames closer than this are merged (the later state wins, shown at the earlier time
# slot's end): typing at 15 keys/s needs no 15 fps video, and each frame costs bits.
MIN_FRAME_MS = 100
# VP9 for screen content: realtime speed, sharp text (tune-content=screen).
ENCODER_OPTIONS = {"deadline": "realtime", "cpu-used": "6", "crf": "40", "b": "0", "row-mt": "1",
                   "lag-in-frames": "0", "g": "100000", "tune-content": "screen"}
THUMB_EVERY_MS = 5000
THUMB_WIDTH = 160
SPRITE_COLUMNS = 10
MAX_THUMBS = 2000  # a 2.8 h session at one per 5 s; longer ones space them out


@dataclass
class RenderResult:
    duration_ms: int
    frames_encoded: int
    width: int
    height: int
    keyframe_interval_ms: int = KEYFRAME_MS
    unknown: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    truncated: str | None = None
    bytes_written: int = 0
    instructions: int = 0


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


class _Encoder:
    def __init__(self, path: Path, width: int, height: int):
        self.container = av.open(str(path), mode="w", format="webm")
        # VP9 wants even dimensions.
        self.width, self.height = width + (width & 1), height + (height & 1)
        self.stream = self.container.add_stream("libvpx-vp9", rate=1000)
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = Fraction(1, 1000)
        self.stream.codec_context.time_base = Fraction(1, 1000)
        # Realtime VP9: encodes far faster than real time; CRF keeps text legible.
        self.stream.options = dict(ENCODER_OPTIONS)
        self.frames = 0
        self.last_key: int | None = None
        self.last_pts = -1

    def add(self, image: np.ndarray, pts: int) -> None:
        if pts <= self.last_pts:
            pts = self.last_pts + 1  # two frames in one millisecond: keep them ordered
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = cv2.copyMakeBorder(image, 0, self.height - image.shape[0], 0, self.width - image.shape[1],
                                       cv2.BORDER_CONSTANT)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = self.stream.time_base
        if self.last_key is None or pts - self.last_key >= KEYFRAME_MS:
            frame.pict_type = av.video.frame.PictureType.I
            self.last_key = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        self.last_pts = pts

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class _Sprite:
    def __init__(self, every_ms: int):
        self.every_ms = every_ms
        self.next_ms = 0
        self.thumbs: list[tuple[int, np.ndarray]] = []

    def offer(self, offset_ms: int, frame: np.ndarray, final: bool = False) -> None:
        while offset_ms >= self.next_ms or (final and not self.thumbs):
            scale = THUMB_WIDTH / frame.shape[1]
            thumb = cv2.resize(frame, (THUMB_WIDTH, max(1, round(frame.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
            self.thumbs.append((self.next_ms if not final else offset_ms, thumb))
            self.next_ms += self.every_ms
            if final:
                break

    def write(self, image_path: Path, index_path: Path) -> None:
        if not self.thumbs:
            raise RenderError("no frame to make thumbnails from")
        th, tw = self.thumbs[0][1].shape[:2]
        rows = (len(self.thumbs) + SPRITE_COLUMNS - 1) // SPRITE_COLUMNS
        cols = min(SPRITE_COLUMNS, len(self.thumbs))
        sheet = np.zeros((rows * th, cols * tw, 3), np.uint8)
        items = []
        for i, (t, thumb) in enumerate(self.thumbs):
            r, c = divmod(i, SPRITE_COLUMNS)
            sheet[r * th:r * th + thumb.shape[0], c * tw:c * tw + thumb.shape[1]] = thumb[:th, :tw]
            items.append({"t_ms": t, "x": c * tw, "y": r * th, "w": tw, "h": th})
        ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RenderError("cannot encode the thumbnail sprite")
        _write_atomically(image_path, data.tobytes())
        _write_atomically(index_path, json.dumps({"interval_ms": self.every_ms, "thumb_width": tw,
                                                  "thumb_height": th, "columns": SPRITE_COLUMNS,
                                                  "items": items}).encode())


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = _tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def render_recording(src: bytes | str | Path | Iterable[bytes], out_webm: Path, *,
                     size: tuple[int, int] | None = None, sprite_path: Path | None = None,
                     sprite_index_path: Path | None = None, poster_path: Path | None = None,
                     progress: Callable[[float], None] | None = None,
                     total_bytes: int | None = None) -> RenderResult:
    """Render a recording (ours or guacd's own) to WebM, plus sprite, index and poster if asked."""
    out_webm = Path(out_webm)
    report = StreamReport()
    display = Display()
    if isinstance(src, (str, Path)) and total_bytes is None:
        total_bytes = Path(src).stat().st_size
    consumed = [0]

    def counted(chunks):
        for chunk in chunks:
            consumed[0] += len(chunk)
            yield chunk

    source = counted(file_chunks(Path(src))) if isinstance(src, (str, Path)) else src
    encoder: _Encoder | None = None
    sprite = _Sprite(THUMB_EVERY_MS)
    last_frame, last_offset, last_progress = None, 0, -1.0
    pending: tuple[np.ndarray, int] | None = None  # the newest state not yet encoded
    tmp_video = _tmp(out_webm)
    try:
        for offset, frame, dirty in iter_frames(read_instructions(source, report), display, report):
            if size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            if encoder is None:
                encoder = _Encoder(tmp_video, frame.shape[1], frame.shape[0])
            if dirty or last_frame is None or frame.shape != last_frame.shape:
                pending = (frame, offset)
            if pending is not None and (encoder.frames == 0 or offset >= encoder.last_pts + MIN_FRAME_MS):
                encoder.add(pending[0], max(pending[1], encoder.last_pts + MIN_FRAME_MS if encoder.frames else 0))
                pending = None
            if sprite_path:
                sprite.offer(offset, frame)
            last_frame, last_offset = frame, offset
            if progress and total_bytes:
                fraction = min(1.0, consumed[0] / total_bytes)
                if fraction - last_progress >= 0.01:
                    progress(fraction)
                    last_progress = fraction
        if encoder is None or last_frame is None:
            raise RenderError("the recording has no frame to render (no `size` and `sync` from guacd)")
        if pending is not None:
            encoder.add(pending[0], max(pending[1], encoder.last_pts + 1))
        if encoder.last_pts < last_offset:
            encoder.add(last_frame, last_offset)  # the video lasts as long as the session
        encoder.close()
        os.replace(tmp_video, out_webm)
    except BaseException:
        tmp_video.unlink(missing_ok=True)
        raise
    if sprite_path:
        sprite.offer(last_offset, last_frame, final=True)
        sprite.write(Path(sprite_path), Path(sprite_index_path or Path(sprite_path).with_suffix(".json")))
    if poster_path:
        ok, data = cv2.imencode(".jpg", last_frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        _write_atomically(Path(poster_path), data.tobytes())
    if progress:
        progress(1.0)
    return RenderResult(duration_ms=last_offset, frames_encoded=encoder.frames, width=last_frame.shape[1],
                        height=last_frame.shape[0], unknown=dict(display.unknown), malformed=dict(display.malformed),
                        truncated=report.truncated, bytes_written=out_webm.stat().st_size,
                        instructions=report.instructions)


def probe_recording(src: bytes | str | Path) -> tuple[int, int, int]:
    """(duration ms, width, height) without rendering: reads only `size` of layer 0 and `sync`."""
    report = StreamReport()
    width = height = 0
    for ins in read_instructions(src, report):
        if ins[0] == "size" and len(ins) >= 4 and ins[1] == "0":
            width, height = int(ins[2]), int(ins[3])
        elif ins[0] == "sync" and len(ins) > 1 and ins[1].lstrip("-").isdigit():
            ts = int(ins[1])
            report.first_ts = ts if report.first_ts is None else report.first_ts
            report.last_ts = ts
    if report.first_ts is None:
        return 0, width, height
    return report.last_ts - report.first_ts, width, height
