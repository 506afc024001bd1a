"""Recording -> WebM (AV1 or VP9, variable frame rate), thumbnail sprite with index, poster.

Frame times come from the `sync` timestamps (time base 1 ms), and only frames
where something changed are encoded, so idle minutes cost almost nothing. A
seek decodes from the keyframe before the target up to it, and only the frames
in between cost anything: idle time has none. So a keyframe is forced once 5 s
worth of frames (KEYFRAME_FRAMES, at the MIN_FRAME_MS cap of 10 a second) follow
the last one, not after 5 s of wall time: a session that types a line, reads for
20 s and types again shares one keyframe, and any seek still decodes at most 5 s
of video (issue 19: the time-forced keyframes were two thirds of the bytes). The last frame is repeated
at the final `sync` so that the video lasts exactly as long as the session.
Outputs are written under temporary names and renamed at the end: nothing
half-written is ever visible.
"""

from __future__ import annotations

import ctypes
import json
import os
from fractions import Fraction
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from gui_recorder.errors import RenderError
from gui_recorder.render.display import Display
from gui_recorder.render.frames import Source, StreamReport, iter_frames, read_instructions, sync_timestamp

KEYFRAME_MS = 5000
# Frames closer than this are merged (the later state wins, shown at the earlier time
# slot's end): typing at 15 keys/s needs no 15 fps video, and each frame costs bits.
MIN_FRAME_MS = 100


@dataclass(frozen=True)
class Profile:
    """One encoder configuration; bench/render.py --profiles compares them (docs/video-encoding.md)."""

    name: str
    codec: str
    options: dict[str, str]
    threads: int = 1
    # The nominal frame rate the encoder is told (frames are timed by pts in ms whatever it says);
    # SVT-AV1 refuses more than 240.
    rate: int = 1000


PROFILES = {
    # AV1 (SVT-AV1) with its screen-content tools (palette, intra block copy: text is cheap to code),
    # low delay, one thread. Measured on bench/render.py's sessions against the VP9 ones below
    # (docs/video-encoding.md): about half the bytes of VP9 at CRF 48, with better worst frames.
    "av1": Profile("av1", "libsvtav1", {"preset": "8", "crf": "34",
                                        "svtav1-params": "scm=1:lp=1:pred-struct=1:lookahead=0:keyint=-1:rtc=1"},
                   rate=10),
    # VP9 for screen content at the quality target: faster (about twice), more bytes.
    "vp9": Profile("vp9", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "6", "crf": "36", "b": "0",
                                         "row-mt": "1", "lag-in-frames": "0", "g": "100000",
                                         "tune-content": "screen", "aq-mode": "0"}),
    # What rendered before issue 19 (CRF 48): smallest VP9, worst frames near 30 dB.
    "vp9-crf48": Profile("vp9-crf48", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "6", "crf": "48",
                                                     "b": "0", "row-mt": "1", "lag-in-frames": "0",
                                                     "g": "100000", "tune-content": "screen"}),
}
DEFAULT_PROFILE = "av1"
# A cold session opened after its media was dropped is waited for by an auditor, and its media is
# dropped again at the next move: rendered with the faster encoder, at the same quality, more bytes.
ON_DEMAND_PROFILE = "vp9"
# At most this many frames follow a keyframe: 5 s of video at the densest (one per MIN_FRAME_MS).
KEYFRAME_FRAMES = KEYFRAME_MS // MIN_FRAME_MS
THUMB_EVERY_MS = 5000
THUMB_WIDTH = 160
SPRITE_COLUMNS = 10
# A 1.4 h session at one per 5 s; longer ones space them out. Bounds the sheet built at the end
# (58 MB for 1024x768 screens; issue 19) and keeps the JPEG < 65535 px.
MAX_THUMBS = 1000
MAX_OUTPUT_SIDE = 4096


@dataclass
class RenderResult:
    duration_ms: int
    frames_encoded: int
    width: int
    height: int
    keyframe_interval_ms: int = KEYFRAME_MS  # of video, idle time not counted: see KEYFRAME_FRAMES
    keyframe_max_frames: int = KEYFRAME_FRAMES  # frames a seek decodes at most after its keyframe
    profile: str = DEFAULT_PROFILE
    unknown: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    truncated: str | None = None
    bytes_written: int = 0
    instructions: int = 0


def _give_back_freed_memory() -> None:
    """Return the heap's free memory to the system (glibc's malloc_trim); elsewhere nothing to do.

    Measured on the 1-hour recording: the closed encoder's memory otherwise stayed
    resident under the sheet built next, and the peak was at the very end.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


class _Encoder:
    def __init__(self, path: Path, width: int, height: int, profile: Profile,
                 observe: Callable[[np.ndarray, int], None] | None = None):
        self.observe = observe
        self.container = av.open(str(path), mode="w", format="webm")
        # VP9 and AV1 want even dimensions.
        self.width, self.height = width + (width & 1), height + (height & 1)
        self.stream = self.container.add_stream(profile.codec, rate=profile.rate)
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = Fraction(1, 1000)
        self.stream.codec_context.time_base = Fraction(1, 1000)
        # Realtime: encodes far faster than real time; CRF keeps text legible. A fixed thread count:
        # the encoder's threads are the worker's to budget (two jobs at once), not one per core.
        self.stream.options = dict(profile.options)
        self.stream.codec_context.thread_count = profile.threads
        # Say what the pixels are (BT.601, limited range, as cv2's BGR->I420 makes them), so a
        # browser does not guess BT.709 for a large picture and shift the colours.
        context = self.stream.codec_context
        # (FFmpeg enums: AVCOL_SPC_BT470BG, AVCOL_PRI_BT470BG, AVCOL_TRC_SMPTE170M, AVCOL_RANGE_MPEG.)
        context.colorspace, context.color_primaries, context.color_trc, context.color_range = 5, 5, 6, 1
        self.frames = 0
        self.last_key: int | None = None
        self.since_key = 0  # frames after the last keyframe
        self.last_pts = -1

    def add(self, image: np.ndarray, pts: int) -> None:
        if pts <= self.last_pts:
            pts = self.last_pts + 1  # two frames in one millisecond: keep them ordered
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = fit_into(image, self.width, self.height)
        # OpenCV's BGR->I420 (BT.601, limited range) is exact to within a level; swscale's
        # unscaled bgr24->yuv420p path costs ~25 dB on terminal text (measured: 37 vs 63 dB).
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        frame.pts = pts
        frame.time_base = self.stream.time_base
        if self.observe is not None:
            self.observe(image, pts)
        if self.last_key is None or self.since_key >= KEYFRAME_FRAMES:
            frame.pict_type = av.video.frame.PictureType.I
            self.last_key, self.since_key = pts, 0
        else:
            self.since_key += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        self.last_pts = pts

    def abandon(self) -> None:
        try:
            self.container.close()
        except (av.FFmpegError, OSError, ValueError):
            pass  # already failing: the temporary file is removed by the caller

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The picture on a black (width, height) canvas, top-left, scaled down only if it is larger.

    The video keeps the size of its first frame: a display resized mid-session
    (RDP or VNC desktop resize) is letterboxed rather than cropped. Odd sizes get
    one black column or row, as VP9's 4:2:0 wants even dimensions.
    """
    h, w = image.shape[:2]
    if w > width or h > height:
        scale = min(width / w, height / h)
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    out[:h, :w] = image
    return out


class _Sprite:
    """Thumbnails kept JPEG-compressed (a few KB each; an idle stretch shares one) and laid out into
    the sheet only at the end, after the encoder is closed (issue 19: a list of raw thumbnails plus
    the sheet built from it was two copies growing with the session, 230 MB at 2,000 thumbnails on
    top of the encoder). The sheet itself is bounded by MAX_THUMBS cells."""

    def __init__(self, every_ms: int):
        self.every_ms = every_ms
        self.next_ms = 0
        self.thumbs: list[tuple[int, bytes]] = []
        self.cell: tuple[int, int] | None = None  # (height, width) of every cell

    def offer(self, offset_ms: int, frame: np.ndarray, final: bool = False) -> None:
        if offset_ms < self.next_ms and not (final and not self.thumbs):
            return
        scale = THUMB_WIDTH / frame.shape[1]
        thumb = cv2.resize(frame, (THUMB_WIDTH, max(1, round(frame.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        if self.cell is None:
            self.cell = thumb.shape[:2]
        elif thumb.shape[:2] != self.cell:  # the display was resized: one cell size
            thumb = fit_into(thumb, self.cell[1], self.cell[0])
        ok, encoded = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise RenderError("cannot encode a thumbnail")
        data = encoded.tobytes()
        while offset_ms >= self.next_ms or (final and not self.thumbs):
            # Each slot shows the screen as it was at its time (an idle stretch repeats one picture).
            self.thumbs.append((self.next_ms if not final else offset_ms, data))
            self.next_ms += self.every_ms
            if len(self.thumbs) > MAX_THUMBS:
                # A very long session: keep every other thumbnail and space them twice as far.
                self.thumbs = self.thumbs[::2]
                self.every_ms *= 2
                self.next_ms = self.thumbs[-1][0] + self.every_ms
            if final:
                break

    def write(self, image_path: Path, index_path: Path) -> None:
        if not self.thumbs or self.cell is None:
            raise RenderError("no frame to make thumbnails from")
        th, tw = self.cell
        rows = (len(self.thumbs) + SPRITE_COLUMNS - 1) // SPRITE_COLUMNS
        cols = min(SPRITE_COLUMNS, len(self.thumbs))
        sheet = np.zeros((rows * th, cols * tw, 3), np.uint8)
        items = []
        thumbs, self.thumbs = self.thumbs, []
        for i in range(len(thumbs)):
            t, data = thumbs[i]
            thumbs[i] = (t, b"")  # each compressed copy goes as its cell is drawn
            thumb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            r, c = divmod(i, SPRITE_COLUMNS)
            sheet[r * th:r * th + thumb.shape[0], c * tw:c * tw + thumb.shape[1]] = thumb[:th, :tw]
            items.append({"t_ms": t, "x": c * tw, "y": r * th, "w": tw, "h": th})
        ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 80])
        del sheet
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


def render_recording(src: Source, out_webm: Path, *, size: tuple[int, int] | None = None,
                     sprite_path: Path | None = None, sprite_index_path: Path | None = None,
                     poster_path: Path | None = None, progress: Callable[[float], None] | None = None,
                     total_bytes: int | None = None, profile: str = DEFAULT_PROFILE,
                     observe: Callable[[np.ndarray, int], None] | None = None) -> RenderResult:
    """Render a recording (ours or guacd's own) to WebM, plus sprite, index and poster if asked.

    ``src`` is a path, bytes, a binary file object or an iterable of byte chunks.
    ``progress`` gets the fraction of the input read (needs a path, a seekable
    file or ``total_bytes``). A recording cut mid-instruction renders up to its
    last whole instruction and says so in ``RenderResult.truncated``.
    Raises RenderError when there is nothing to render or an output cannot be written.
    """
    out_webm = Path(out_webm)
    if size is not None and not (16 <= size[0] <= MAX_OUTPUT_SIDE and 16 <= size[1] <= MAX_OUTPUT_SIDE):
        raise RenderError(f"output size {size[0]}x{size[1]} is outside 16..{MAX_OUTPUT_SIDE}")
    if profile not in PROFILES:
        raise RenderError(f"unknown encoder profile {profile!r} (known: {', '.join(PROFILES)})")
    report = StreamReport()
    display = Display()
    if total_bytes is None:
        total_bytes = _total_bytes(src)
    encoder: _Encoder | None = None
    sprite = _Sprite(THUMB_EVERY_MS)
    last_frame, last_offset, last_progress = None, 0, -1.0
    pending: tuple[np.ndarray, int] | None = None  # the newest state not yet encoded
    tmp_video = _tmp(out_webm)
    try:
        for offset, frame, dirty in iter_frames(read_instructions(src, report), display, report):
            if size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            if encoder is None:
                encoder = _Encoder(tmp_video, frame.shape[1], frame.shape[0], PROFILES[profile], observe)
            if dirty or last_frame is None or frame.shape != last_frame.shape:
                pending = (frame, offset)
            if pending is not None and (encoder.frames == 0 or offset >= encoder.last_pts + MIN_FRAME_MS):
                encoder.add(pending[0], max(pending[1], encoder.last_pts + MIN_FRAME_MS if encoder.frames else 0))
                pending = None
            if sprite_path:
                sprite.offer(offset, frame)
            last_frame, last_offset = frame, offset
            if progress and total_bytes:
                fraction = min(1.0, report.bytes_read / total_bytes)
                if fraction - last_progress >= 0.01:
                    progress(fraction)
                    last_progress = fraction
        if encoder is None or last_frame is None:
            raise RenderError("the recording has no frame to render (no `size` and `sync` from guacd)")
        if pending is not None:
            encoder.add(pending[0], max(pending[1], encoder.last_pts + 1))
        if encoder.last_pts < last_offset:
            encoder.add(last_frame, last_offset)  # the video lasts as long as the session
        frames_encoded = encoder.frames
        encoder.close()
        encoder = None
        _give_back_freed_memory()  # before the sprite's sheet: the encoder's buffers, not both at once
        if sprite_path:
            sprite.offer(last_offset, last_frame, final=True)
            sprite.write(Path(sprite_path), Path(sprite_index_path or Path(sprite_path).with_suffix(".json")))
        if poster_path:
            ok, data = cv2.imencode(".jpg", last_frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            _write_atomically(Path(poster_path), data.tobytes())
        os.replace(tmp_video, out_webm)  # last: the video's presence means everything is there
    except av.FFmpegError as exc:
        raise RenderError(f"the video encoder failed: {exc}") from exc
    except OSError as exc:
        raise RenderError(f"cannot write the rendering: {exc}") from exc
    finally:
        if encoder is not None:
            encoder.abandon()
        tmp_video.unlink(missing_ok=True)
    if progress and last_progress < 1.0:
        progress(1.0)
    return RenderResult(duration_ms=last_offset, frames_encoded=frames_encoded, width=last_frame.shape[1],
                        profile=profile,
                        height=last_frame.shape[0], unknown=dict(display.unknown), malformed=dict(display.malformed),
                        truncated=report.truncated, bytes_written=out_webm.stat().st_size,
                        instructions=report.instructions)


def _total_bytes(src: Source) -> int | None:
    if isinstance(src, (str, Path)):
        return Path(src).stat().st_size
    if isinstance(src, (bytes, bytearray, memoryview)):
        return len(src)
    try:
        here = src.tell()  # type: ignore[union-attr]
        end = src.seek(0, os.SEEK_END)  # type: ignore[union-attr]
        src.seek(here)  # type: ignore[union-attr]
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


def probe_recording(src: Source) -> tuple[int, int, int]:
    """(duration ms, width, height) without rendering: parses, but draws nothing."""
    report = StreamReport()
    width = height = 0
    for ins in read_instructions(src, report):
        op = ins[0]
        if op == "sync":
            ts = sync_timestamp(ins)
            if ts is not None:
                report.first_ts = ts if report.first_ts is None else report.first_ts
                report.last_ts = ts
        elif op == "size" and len(ins) >= 4 and ins[1] == "0":
            try:
                width, height = int(ins[2]), int(ins[3])
            except ValueError:
                pass
    if report.first_ts is None or report.last_ts is None:
        return 0, width, height
    return report.last_ts - report.first_ts, width, height
