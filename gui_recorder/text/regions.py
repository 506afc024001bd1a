"""Which parts of the screen to OCR, and when.

The display model reports the rectangles each frame changed. We merge nearby
rectangles into regions, wait until a region has not changed for a while of
recording time (debounce: text being typed or scrolling is read once, when it
settles), then grow it to whole text lines so a changed character is read
with the rest of its line. Pure geometry and time, no OCR: fast to test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Rect = tuple[int, int, int, int]  # x, y, w, h

DEBOUNCE_MS = 1000
# Text replaced after being still this long was on screen for a person to read (a dialog that flashes
# up): it is read from its last look, though it never settled for DEBOUNCE_MS.
FLASH_MS = 300
MERGE_GAP = 12  # px: rects closer than this are one region (neighbouring glyph cells)
# Growing to text lines: columns without ink for this many px end a line
# (two or three spaces of a 14 px font; words within a label stay together).
LINE_GAP = 28
INK_DELTA = 48  # grey levels from the background that count as ink
SOLID = 0.9  # share of a row/column inked beyond which it is a rule or a solid area, not text
MAX_PENDING = 256  # regions tracked at once; beyond that they are merged into one


def intersects(a: Rect, b: Rect, gap: int = 0) -> bool:
    return (a[0] - gap < b[0] + b[2] and b[0] - gap < a[0] + a[2]
            and a[1] - gap < b[1] + b[3] and b[1] - gap < a[1] + a[3])


def union(a: Rect, b: Rect) -> Rect:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def clip(rect: Rect, width: int, height: int) -> Rect | None:
    x0, y0 = max(0, rect[0]), max(0, rect[1])
    x1, y1 = min(width, rect[0] + rect[2]), min(height, rect[1] + rect[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def merge_rects(rects: list[Rect], gap: int = MERGE_GAP) -> list[Rect]:
    """Union rectangles that overlap or lie within ``gap`` px, until none do."""
    out = [r for r in rects if r[2] > 0 and r[3] > 0]
    merged = True
    while merged:
        merged = False
        result: list[Rect] = []
        for rect in out:
            for i, other in enumerate(result):
                if intersects(rect, other, gap):
                    result[i] = union(rect, other)
                    merged = True
                    break
            else:
                result.append(rect)
        out = result
    return out


def _extend(profile: np.ndarray, start: int, end: int, gap: int) -> tuple[int, int]:
    """Widen [start, end) over ``profile`` (True = ink) while ink continues within ``gap``."""
    n = len(profile)
    lo, misses, i = start, 0, start - 1
    while i >= 0 and misses < gap:
        if profile[i]:
            lo, misses = i, 0
        else:
            misses += 1
        i -= 1
    hi, misses, i = end, 0, end
    while i < n and misses < gap:
        if profile[i]:
            hi, misses = i + 1, 0
        else:
            misses += 1
        i += 1
    return lo, hi


def grow_to_text(gray: np.ndarray, rect: Rect, line_gap: int = LINE_GAP) -> Rect:
    """Grow ``rect`` to the text lines it cuts through, on a greyscale frame.

    Vertically to the rows where the ink touching the rect ends (so glyphs cut
    at the top or bottom are whole), then horizontally while ink continues
    with gaps under ``line_gap`` px (the rest of the line).
    """
    height, width = gray.shape
    x, y, w, h = rect
    if w <= 0 or h <= 0:
        return rect
    # The background is what most of the rect's rows show across the screen:
    # the rect itself may be all ink (one changed glyph cell).
    background = int(np.median(gray[y:y + h]))
    # Vertical: rows with ink in the rect's columns, no gap allowed (lines of
    # text are separated by at least one clean row).
    cols = gray[:, x:x + w].astype(np.int16)
    rows_ink = (np.abs(cols - background) > INK_DELTA).any(axis=1)
    y0, y1 = _extend(rows_ink, y, y + h, 1)
    # Horizontal: columns with ink over those rows.
    rows = gray[y0:y1].astype(np.int16)
    cols_ink = (np.abs(rows - background) > INK_DELTA).any(axis=0)
    x0, x1 = _extend(cols_ink, x, x + w, line_gap)
    pad = 2
    return clip((x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), width, height) or rect


def text_rows(gray: np.ndarray, min_height: int = 6, join_gap: int = 2, pad: int = 2) -> list[Rect]:
    """Boxes (x, y, w, h) of the bands of rows holding text, top to bottom, in ``gray``.

    Each band is cut to the columns where its ink is. Columns inked over
    nearly the whole height (window borders, scroll bars) and rows inked over
    nearly the whole width (rules, solid areas) are not text and are ignored,
    or they would join every row into one band. Rows separated by at most
    ``join_gap`` clean rows are one band (the dot of an 'i'); bands lower than
    ``min_height`` hold no readable text.
    """
    if gray.size == 0:
        return []
    height, width = gray.shape
    background = int(np.median(gray))
    ink = np.abs(gray.astype(np.int16) - background) > INK_DELTA
    text_cols = ink.mean(axis=0) < SOLID
    row_share = ink[:, text_cols].mean(axis=1) if text_cols.any() else np.zeros(height)
    text_rows_ = (row_share > 0) & (row_share < SOLID)
    bands: list[list[int]] = []
    for row in np.flatnonzero(text_rows_):
        if bands and row - bands[-1][1] <= join_gap + 1:
            bands[-1][1] = int(row)
        else:
            bands.append([int(row), int(row)])
    out: list[Rect] = []
    for top, bottom in bands:
        if bottom + 1 - top < min_height:
            continue
        cols = np.flatnonzero(ink[top:bottom + 1].any(axis=0) & text_cols)
        if cols.size == 0:
            continue
        y0, y1 = max(0, top - pad), min(height, bottom + 1 + pad)
        x0, x1 = max(0, int(cols[0]) - pad), min(width, int(cols[-1]) + 1 + pad)
        out.append((x0, y0, x1 - x0, y1 - y0))
    return out


@dataclass
class Region:
    rect: Rect
    first_change_ms: int
    last_change_ms: int
    # Its pixels as of its last change (gray, grown to whole text lines) and where they were: what
    # was on screen, should it change again before it settles (ocr.ScreenTextExtractor).
    look: np.ndarray | None = None
    look_at: tuple[int, int] = (0, 0)


class RegionTracker:
    """Regions that changed and are waiting to settle.

    ``changed`` records this frame's dirty rectangles; ``settled(now)`` pops the
    regions unchanged for ``debounce_ms``; ``drain`` pops the rest (at the end).
    """

    def __init__(self, debounce_ms: int = DEBOUNCE_MS, merge_gap: int = MERGE_GAP):
        self.debounce_ms = debounce_ms
        self.merge_gap = merge_gap
        self.pending: list[Region] = []

    def changed(self, rects: list[Rect], offset_ms: int) -> None:
        for rect in merge_rects(list(rects), self.merge_gap):
            region = Region(rect, offset_ms, offset_ms)
            # Absorb every pending region it touches, repeatedly: the union may
            # now touch others.
            absorbed = True
            while absorbed:
                absorbed = False
                for other in self.pending:
                    if intersects(region.rect, other.rect, self.merge_gap):
                        region.rect = union(region.rect, other.rect)
                        region.first_change_ms = min(region.first_change_ms, other.first_change_ms)
                        self.pending.remove(other)
                        absorbed = True
                        break
            self.pending.append(region)
        if len(self.pending) > MAX_PENDING:
            whole = self.pending[0]
            for other in self.pending[1:]:
                whole = Region(union(whole.rect, other.rect), min(whole.first_change_ms, other.first_change_ms),
                               max(whole.last_change_ms, other.last_change_ms))
            self.pending = [whole]

    def about_to_change(self, rects: list[Rect], now_ms: int, still_ms: int = FLASH_MS) -> list[Region]:
        """Pending regions that ``rects`` touch and that were still for ``still_ms``: call before
        ``changed``, whose merge would forget what they showed."""
        return [r for r in self.pending if r.look is not None and now_ms - r.last_change_ms >= still_ms
                and any(intersects(r.rect, rect, self.merge_gap) for rect in rects)]

    def settled(self, now_ms: int) -> list[Region]:
        ready = [r for r in self.pending if now_ms - r.last_change_ms >= self.debounce_ms]
        if ready:
            self.pending = [r for r in self.pending if r not in ready]
        return ready

    def drain(self) -> list[Region]:
        ready, self.pending = self.pending, []
        return ready
