"""Screen text: OCR the regions of the screen that changed and then settled.

Fed the frames of the display model with their dirty rectangles,
``ScreenTextExtractor`` waits for each changed region to stay unchanged for
~1 s of recording time, grows it to whole text lines and cuts it into text
rows. A region replaced after it was still for 300 ms (a dialog that flashes
up) is read from its last look, kept since its last change. A row whose
pixels were read before (a scrolled terminal line, a neighbour of what
changed) reuses that reading; new rows are packed into one
image per batch for the injected OCR engine (tesseract costs ~0.17 CPU-s per
start). Text already seen in the same place, or moments ago elsewhere (it
moved), is not stored again: its ``last_ms`` is extended. bench/ocr.py
compares the CPU with reading the full frame every second.

``extract_text(recording, frames=...)`` runs the whole text stage on a recording: typed
lines (keys.py) and screen text, both measured from the recording's first
timestamp.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol import Instruction, Parser
from gui_recorder.text.engine import OcrEngine, OcrLine, TesseractEngine
from gui_recorder.text.items import ScreenText
from gui_recorder.text.keys import KeyDecoder, TypedLine
from gui_recorder.text.terminal import PrintedLine, TerminalDecoder
from gui_recorder.text.transfers import Transfer, TransferDecoder
from gui_recorder.text.regions import (
    DEBOUNCE_MS, Rect, Region, RegionTracker, clip, grow_to_text, intersects, text_rows,
)

log = logging.getLogger(__name__)

# Same text within this many px of an earlier item is "the same place".
SAME_PLACE_PX = 10
# Same text seen elsewhere this recently has moved rather than appeared.
MOVED_WITHIN_MS = 5000
ROW_CACHE = 4096  # readings of text rows kept for reuse (LRU)
ROW_GAP = 6  # px of white between rows stacked into one OCR image
# Rows wait for the engine until this much recording time or these many
# pixels have gathered (one tesseract start per batch, not per row).
BATCH_MS = 30_000
BATCH_PIXELS = 1_500_000
MAX_ROWS_PER_CALL = 400
PACK_WIDTH = 1280  # px: width of the packed image rows are read in
PACK_GAP = 80  # px at least between rows side by side (more than group_lines joins)
READ_CHUNK = 1 << 16


def normalize(text: str) -> str:
    return " ".join(text.split())


@dataclass
class OcrStats:
    calls: int = 0  # engine calls
    pixels: int = 0  # pixels the engine was given
    rows_reused: int = 0  # text rows whose earlier reading was reused
    items: int = 0
    extended: int = 0


@dataclass
class _Row:
    """A text row that settled and waits for the engine (its pixels are copied)."""

    key: bytes
    band: np.ndarray
    x: int
    y: int
    appeared_ms: int  # when its region last changed: when this text appeared
    seen_ms: int  # when it was cut from the screen
    gone_ms: int | None = None  # when it was replaced, for a row read from a region's last look


class ScreenTextExtractor:
    """Incremental OCR of a recording's frames.

    Call ``feed_frame(offset_ms, frame, dirty_rects)`` for each frame in order
    (the frame must not change until the call returns), ``advance(offset_ms)``
    when time passes without a frame (input timestamps), and ``flush()`` at the
    end. Each returns the new ``ScreenText`` items.

    Rows that settle are cut from the screen at once (their time is exact) but
    read in batches: tesseract costs ~0.17 CPU-s to start, so rows wait until
    ``batch_ms`` of recording time or ``batch_pixels`` have gathered. A live
    pipeline sees text that much later. The ``last_ms`` of items returned
    earlier keeps growing while they stay on screen, so a live pipeline
    re-indexes the session at the end (index_session is idempotent).
    """

    def __init__(self, engine: OcrEngine, debounce_ms: int = DEBOUNCE_MS, batch_ms: int = BATCH_MS,
                 batch_pixels: int = BATCH_PIXELS):
        self.engine = engine
        self.tracker = RegionTracker(debounce_ms)
        self.batch_ms, self.batch_pixels = batch_ms, batch_pixels
        self.items: list[ScreenText] = []
        self.stats = OcrStats()
        self._by_text: dict[str, list[ScreenText]] = {}
        self._rows: OrderedDict[bytes, list[OcrLine]] = OrderedDict()
        self._queue: list[_Row] = []
        self._queued_pixels = 0
        # Changes since the oldest queued row: a row read late must know
        # whether its text was covered in the meantime.
        self._changes: list[tuple[int, Rect]] = []
        self._on_screen: list[ScreenText] = []
        self._frame: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._now = 0

    def feed_frame(self, offset_ms: int, frame: np.ndarray, dirty: Iterable[Rect]) -> list[ScreenText]:
        self._now = max(self._now, offset_ms)
        self._frame, self._gray = frame, None
        height, width = frame.shape[:2]
        rects = [r for r in (clip(tuple(map(int, d)), width, height) for d in dirty) if r]
        new: list[ScreenText] = []
        if rects:
            # What was still for FLASH_MS and is replaced now was readable: read its last look.
            new = self._cut_looks(self.tracker.about_to_change(rects, self._now))
            self._leave(rects, self._now)
            self.tracker.changed(rects, self._now)
            if self._queue:
                self._changes.extend((self._now, r) for r in rects)
            self._take_looks()
        return new + self._settle()

    def advance(self, offset_ms: int) -> list[ScreenText]:
        self._now = max(self._now, offset_ms)
        return self._settle()

    def flush(self) -> list[ScreenText]:
        self._cut(self.tracker.drain())
        new = self._process_queue()
        for item in self._on_screen:
            item.last_ms = max(item.last_ms, self._now)
        return new

    # -- internals ----------------------------------------------------------

    def _settle(self) -> list[ScreenText]:
        new = self._cut(self.tracker.settled(self._now))
        if self._queue and (self._queued_pixels >= self.batch_pixels
                            or self._now - self._queue[0].seen_ms >= self.batch_ms):
            new += self._process_queue()
        return new

    def _gray_frame(self) -> np.ndarray:
        if self._gray is None:
            frame = self._frame
            self._gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        return self._gray

    def _take_looks(self) -> None:
        """The pixels of the regions that changed just now, kept until they settle or change again."""
        gray = self._gray_frame()
        for region in self.tracker.pending:
            if region.last_change_ms == self._now:
                rx, ry, rw, rh = grow_to_text(gray, region.rect)
                region.look, region.look_at = gray[ry:ry + rh, rx:rx + rw].copy(), (rx, ry)

    def _cut_looks(self, regions: list[Region]) -> list[ScreenText]:
        new: list[ScreenText] = []
        for region in regions:
            new.extend(self._cut_rows(region.look, *region.look_at, region.last_change_ms, gone_ms=self._now))
            region.look = None
        return new

    def _leave(self, rects: list[Rect], now: int) -> None:
        """Items under a change may be gone: they were last seen now."""
        staying = []
        for item in self._on_screen:
            if any(intersects(item.bbox, r) for r in rects):
                item.last_ms = max(item.last_ms, now)
            else:
                staying.append(item)
        self._on_screen = staying

    def _cut(self, regions: list[Region]) -> list[ScreenText]:
        """Cut the text rows of settled regions; rows read before are resolved at once."""
        if not regions or self._frame is None:
            return []
        gray = self._gray_frame()
        new: list[ScreenText] = []
        for region in regions:
            region.look = None
            rx, ry, rw, rh = grow_to_text(gray, region.rect)
            new.extend(self._cut_rows(gray[ry:ry + rh, rx:rx + rw], rx, ry, region.last_change_ms))
        return new

    def _cut_rows(self, crop: np.ndarray, rx: int, ry: int, appeared_ms: int,
                  gone_ms: int | None = None) -> list[ScreenText]:
        new: list[ScreenText] = []
        for left, top, w, h in text_rows(crop):
            band = crop[top:top + h, left:left + w]
            # Cut to its ink, a row hashes the same wherever it moves
            # (scrolling) and whatever region it is read with.
            key = hashlib.blake2b(band.tobytes(), digest_size=16,
                                  person=w.to_bytes(8, "little")).digest()
            row = _Row(key, band, rx + left, ry + top, appeared_ms, self._now, gone_ms)
            cached = self._rows.get(key)
            if cached is None:
                row.band = band.copy()
                self._queue.append(row)
                self._queued_pixels += band.size
            else:
                self._rows.move_to_end(key)
                self.stats.rows_reused += 1
                new.extend(self._place(row, cached))
        return new

    def _process_queue(self) -> list[ScreenText]:
        if not self._queue:
            return []
        queue, self._queue, self._queued_pixels = self._queue, [], 0
        unique: dict[bytes, np.ndarray] = {}
        for row in queue:
            if row.key not in self._rows:
                unique.setdefault(row.key, row.band)
        keys = list(unique)
        for start in range(0, len(keys), MAX_ROWS_PER_CALL):
            chunk = keys[start:start + MAX_ROWS_PER_CALL]
            for key, lines in zip(chunk, self._ocr_stacked([unique[k] for k in chunk])):
                self._rows[key] = lines
        new: list[ScreenText] = []
        for row in queue:
            new.extend(self._place(row, self._rows.get(row.key, [])))
        while len(self._rows) > ROW_CACHE:
            self._rows.popitem(last=False)
        self._changes.clear()
        return new

    def _covered_after(self, box: Rect, since_ms: int) -> int | None:
        for when, rect in self._changes:
            if when > since_ms and intersects(box, rect):
                return when
        return None

    def _place(self, row: _Row, lines: list[OcrLine]) -> list[ScreenText]:
        new = []
        for line in lines:
            box = (row.x + line.x, row.y + line.y, line.w, line.h)
            new.extend(self._absorb(line.text, box, line.confidence, row.appeared_ms, row.seen_ms, row.gone_ms))
        return new

    def _ocr_stacked(self, bands: list[np.ndarray]) -> list[list[OcrLine]]:
        """One engine call for many rows, packed into one image (dark ink on light).

        Rows are packed on shelves, tallest first, several side by side when
        they fit: tesseract's cost follows the pixels it is given, and most
        rows are far narrower than the screen. Rows on a shelf are kept apart
        by more than ``group_lines`` joins, so no line spans two rows.
        """
        placed = pack_rows([b.shape for b in bands])
        width = max(x + b.shape[1] for (x, _y), b in zip(placed, bands)) + ROW_GAP
        height = max(y + b.shape[0] for (_x, y), b in zip(placed, bands)) + ROW_GAP
        image = np.full((height, width), 255, np.uint8)
        for (x, y), band in zip(placed, bands):
            if float(np.median(band)) < 128:
                band = 255 - band  # one polarity for the whole image
            image[y:y + band.shape[0], x:x + band.shape[1]] = band
        self.stats.calls += 1
        self.stats.pixels += image.size
        out: list[list[OcrLine]] = [[] for _ in bands]
        for line in self.engine.read(image):
            cx, cy = line.x + line.w / 2, line.y + line.h / 2
            for i, ((x, y), band) in enumerate(zip(placed, bands)):
                if x - ROW_GAP <= cx < x + band.shape[1] + ROW_GAP and y - ROW_GAP <= cy < y + band.shape[0] + ROW_GAP:
                    out[i].append(OcrLine(line.text, max(0, line.x - x), max(0, line.y - y), line.w, line.h,
                                          line.confidence))
                    break
        return out

    def _absorb(self, text: str, box: Rect, confidence: float, appeared_ms: int,
                seen_ms: int, gone_ms: int | None = None) -> list[ScreenText]:
        key = normalize(text)
        if not key:
            return []
        covered = gone_ms if gone_ms is not None else self._covered_after(box, seen_ms) if self._changes else None
        last = covered if covered is not None else seen_ms
        for item in self._by_text.get(key, ()):
            same_place = abs(item.x - box[0]) <= SAME_PLACE_PX and abs(item.y - box[1]) <= SAME_PLACE_PX
            # Text seen moments ago elsewhere has moved (scrolling, a dragged
            # window): it did not appear anew.
            moved = seen_ms - item.last_ms <= MOVED_WITHIN_MS
            if same_place or moved:
                item.last_ms = max(item.last_ms, last)
                if covered is None and item not in self._on_screen:
                    self._on_screen.append(item)
                self.stats.extended += 1
                return []
        item = ScreenText(key, *box, confidence=round(confidence, 1), first_ms=appeared_ms,
                          last_ms=max(appeared_ms, last))
        self._by_text.setdefault(key, []).append(item)
        if covered is None:
            self._on_screen.append(item)
        self.items.append(item)
        self.stats.items += 1
        return [item]


def pack_rows(shapes: list[tuple[int, int]], width: int = PACK_WIDTH) -> list[tuple[int, int]]:
    """Top-left corners for rows of ``shapes`` (h, w): shelves, tallest rows first."""
    order = sorted(range(len(shapes)), key=lambda i: -shapes[i][0])
    width = max([width] + [w + 2 * ROW_GAP for _h, w in shapes])
    out: list[tuple[int, int]] = [(0, 0)] * len(shapes)
    shelf_y, shelf_h, x = ROW_GAP, 0, ROW_GAP
    for i in order:
        h, w = shapes[i]
        gap = max(PACK_GAP, 4 * h) if x > ROW_GAP else 0
        if x > ROW_GAP and x + gap + w + ROW_GAP > width:
            shelf_y += shelf_h + ROW_GAP
            shelf_h, x, gap = 0, ROW_GAP, 0
        out[i] = (x + gap, shelf_y)
        x += gap + w
        shelf_h = max(shelf_h, h)
    return out


# -- the whole text stage on one recording ------------------------------------


def iter_instructions(recording: bytes | str | Path | Iterable[Instruction]) -> Iterator[Instruction]:
    """Instructions of a recording given as bytes, a file path or instructions.

    A partial instruction at the end (a recording cut off by a crash) is
    ignored; malformed data raises ``ProtocolError`` with its offset.
    """
    if isinstance(recording, (bytes, bytearray)):
        parser = Parser()
        yield from parser.feed(bytes(recording))
        return
    if isinstance(recording, (str, Path)):
        parser = Parser()
        with open(recording, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield from parser.feed(chunk)
        return
    yield from recording


@dataclass
class TextResult:
    typed: list[TypedLine] = field(default_factory=list)
    screen: list[ScreenText] = field(default_factory=list)
    stats: OcrStats = field(default_factory=OcrStats)
    printed: list[PrintedLine] = field(default_factory=list)  # an SSH terminal's output (text/terminal.py)
    transfers: list[Transfer] = field(default_factory=list)  # clipboard and files (text/transfers.py)
    # Set when the recording turned out malformed part-way: the text before
    # the bad spot is kept (a damaged recording still has evidence in it).
    damaged: str | None = None

    def __iter__(self):
        # ``typed, screen = extract_text(...)`` reads naturally.
        return iter((self.typed, self.screen))


def extract_text(recording: bytes | str | Path | Iterable[Instruction], *, frames,
                 engine: OcrEngine | None = None, debounce_ms: int = DEBOUNCE_MS,
                 keep_files: bool = False) -> TextResult:
    """Typed lines and screen text of a whole recording (offsets from its first timestamp).

    ``frames`` turns instructions into ``(offset_ms, frame, dirty_rects)`` at
    each ``sync``: render's ``screen_frames`` in the pipeline (text does not
    draw, so it does not import render), a small stand-in in unit tests.
    """

    keys = KeyDecoder()
    printed = TerminalDecoder(keys.origin)
    transfers = TransferDecoder(keys.origin, keep_files=keep_files)
    extractor = ScreenTextExtractor(engine or TesseractEngine(), debounce_ms)
    result = TextResult(stats=extractor.stats)
    frame_offset = [0]

    def tee() -> Iterator[Instruction]:
        # Keys and time ride along the instruction stream the renderer reads;
        # frames are timed by our own origin (the first timestamp of any kind),
        # the same zero as the typed lines.
        try:
            for instruction in iter_instructions(recording):
                result.typed.extend(keys.feed(instruction))
                result.printed.extend(printed.feed(instruction))
                result.transfers.extend(transfers.feed(instruction))
                if instruction[0] == "sync":
                    frame_offset[0] = keys.origin.last_offset
                elif instruction[0] in ("key", "mouse") and keys.origin.first is not None:
                    result.screen.extend(extractor.advance(keys.origin.last_offset))
                yield instruction
        except ProtocolError as exc:
            log.warning("recording is malformed, text extracted up to the bad spot: %s", exc)
            result.damaged = str(exc)

    for _offset_ms, frame, dirty in frames(tee()):
        result.screen.extend(extractor.feed_frame(frame_offset[0], frame, dirty))
    result.typed.extend(keys.flush())
    result.printed.extend(printed.flush())
    result.transfers.extend(transfers.flush())
    result.screen.extend(extractor.flush())
    result.screen.sort(key=lambda item: (item.first_ms, item.y, item.x))
    return result
