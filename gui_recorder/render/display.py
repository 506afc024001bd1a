"""The display model: Guacamole drawing instructions applied to layers, as a browser would.

One display-state object, which knows nothing of instructions: the dispatch
and the handlers (one small function per opcode, in a table, as guacenc keeps
them in ``instructions.c``) live in ``handlers.py``, image streams in
``streams.py``, paths in ``paths.py``, pixels in ``layers.py``. Unknown or
malformed instructions are counted and skipped, never fatal. Every change to
what is visible is recorded as a dirty rectangle in display coordinates, which
is what the OCR stage reads to look only where the screen changed.

    d = Display()
    apply(d, instruction)       # handlers.apply: any instruction; `sync` is the caller's business
    d.frame() -> (H, W, 3) BGR  # what the user saw, cursor included
    d.take_dirty() -> [(x, y, w, h), ...] since the last call, clipped to the display
"""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np

from gui_recorder.protocol import Instruction
from gui_recorder.render.layers import MAX_SIDE, OVER, Layer, clip, composite
from gui_recorder.render.paths import clip_mask
from gui_recorder.render.streams import ImageStreams

Rect = tuple[int, int, int, int]

MAX_LAYERS = 16384  # RDP bitmap caches keep thousands of off-screen buffers
MAX_TOTAL_PIXELS = 96 << 20  # all layers together: 384 MB of BGRA at most, whatever the recording says
MAX_DIRTY = 4096  # past this many rectangles in one frame, one covering the whole display says the same


class Display:
    def __init__(self, width: int = 0, height: int = 0):
        self.layers: dict[int, Layer] = {0: Layer(0, width, height)}
        self.pixels = width * height
        self.streams = ImageStreams()
        self.cursor: np.ndarray | None = None
        self.hotspot = (0, 0)
        self.mouse = (0, 0)
        self.unknown: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self._dirty: list[Rect] = []
        self._all_dirty = False

    # -- the public face -----------------------------------------------------

    @property
    def width(self) -> int:
        return self.layers[0].width

    @property
    def height(self) -> int:
        return self.layers[0].height

    def take_dirty(self) -> list[Rect]:
        """Rectangles of the display changed since the last call, clipped to the display."""
        dirty, self._dirty = self._dirty, []
        if self._all_dirty:
            self._all_dirty = False
            return [(0, 0, self.width, self.height)] if self.width and self.height else []
        out = []
        for x, y, w, h in dirty:
            x0, y0, x1, y1 = max(0, x), max(0, y), min(self.width, x + w), min(self.height, y + h)
            if x1 > x0 and y1 > y0:
                out.append((x0, y0, x1 - x0, y1 - y0))
        return out

    def frame(self, with_cursor: bool = True) -> np.ndarray:
        """What the user saw: layer 0 with visible layers over it, and the cursor (BGR)."""
        base = self.layers[0].canvas
        children = []
        for index, layer in self.layers.items():
            if index > 0:
                placed = self._placement(layer)
                if placed is not None:
                    children.append(placed)
        if not children and not (with_cursor and self.cursor is not None):
            return cv2.cvtColor(base, cv2.COLOR_BGRA2BGR)
        out = base.copy()
        # Painter's order: parents before children, siblings by z (then by index, as a browser's DOM order).
        for _key, layer, x, y, opacity in sorted(children, key=lambda c: c[0]):
            if opacity > 0:
                self._draw_onto(out, layer.canvas, x, y, opacity)
        if with_cursor and self.cursor is not None:
            self._draw_onto(out, self.cursor, self.mouse[0] - self.hotspot[0], self.mouse[1] - self.hotspot[1], 255)
        return cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)

    # -- state used by the handlers -------------------------------------------------

    def layer(self, index: str | int) -> Layer:
        i = int(index)
        layer = self.layers.get(i)
        if layer is None:
            if len(self.layers) >= MAX_LAYERS:
                raise ValueError("too many layers")
            layer = self.layers[i] = Layer(i)
        return layer

    def resize(self, layer: Layer, width: int, height: int) -> None:
        if not (0 <= width <= MAX_SIDE and 0 <= height <= MAX_SIDE):
            raise ValueError("layer size out of bounds")
        grow = width * height - layer.width * layer.height
        if self.pixels + grow > MAX_TOTAL_PIXELS:
            raise ValueError("layers exceed the pixel budget")
        layer.resize(width, height)
        self.pixels += grow

    def fit(self, layer: Layer, x: int, y: int, w: int, h: int) -> None:
        """Buffers grow to fit what is drawn into them; visible layers keep their size."""
        size = layer.fitted(x, y, w, h)
        if size is not None:
            self.resize(layer, min(MAX_SIDE, size[0]), min(MAX_SIDE, size[1]))

    def drop(self, index: int) -> None:
        layer = self.layers.pop(index)
        self.pixels -= layer.width * layer.height

    def touched(self, layer: Layer, x: int, y: int, w: int, h: int) -> None:
        """Record a change to (x, y, w, h) of ``layer`` if it can be seen on the display."""
        if layer.index < 0:
            return
        if layer.index > 0:
            placed = self._placement(layer)
            if placed is None:
                return
            x, y = x + placed[2], y + placed[3]
        self.dirty(x, y, w, h)

    def dirty(self, x: int, y: int, w: int, h: int) -> None:
        if self._all_dirty:
            return
        if len(self._dirty) >= MAX_DIRTY:
            self._all_dirty, self._dirty = True, []
            return
        self._dirty.append((x, y, w, h))

    def put(self, layer: Layer, image: np.ndarray, x: int, y: int, mask: int) -> None:
        """Draw a BGRA picture at (x, y) of ``layer`` with a channel mask, within the clip."""
        h, w = image.shape[:2]
        self.fit(layer, x, y, w, h)
        area = clip(layer, x, y, w, h)
        if area is None:
            return
        cx, cy, cw, ch = area
        src = image[cy - y:cy - y + ch, cx - x:cx - x + cw]
        dst = layer.canvas[cy:cy + ch, cx:cx + cw]
        allowed = clip_mask(layer.paths, cx, cy, cw, ch) if layer.paths.clips else None
        if allowed is None:
            composite(dst, src, mask)
        else:
            patch = dst.copy()
            composite(patch, src, mask)
            dst[allowed] = patch[allowed]
        self.touched(layer, cx, cy, cw, ch)

    def cursor_dirty(self) -> None:
        if self.cursor is not None:
            h, w = self.cursor.shape[:2]
            self.dirty(self.mouse[0] - self.hotspot[0], self.mouse[1] - self.hotspot[1], w, h)

    # -- composition ------------------------------------------------------------------

    def _placement(self, layer: Layer) -> tuple[list[tuple[int, int]], Layer, int, int, int] | None:
        """(stacking key, layer, x, y, opacity) on the display, or None if not attached to it."""
        x, y, opacity = layer.x, layer.y, layer.opacity
        key = [(layer.z, layer.index)]
        seen = {layer.index}
        parent_index = layer.parent
        while parent_index != 0:
            parent = self.layers.get(parent_index)
            if parent is None or parent.index < 0 or parent.index in seen:
                return None  # under a buffer, a disposed layer, or a cycle: not shown
            seen.add(parent.index)
            x, y = x + parent.x, y + parent.y
            opacity = opacity * parent.opacity // 255
            key.insert(0, (parent.z, parent.index))
            parent_index = parent.parent
        return key, layer, x, y, opacity

    @staticmethod
    def _draw_onto(dst: np.ndarray, src: np.ndarray, x: int, y: int, opacity: int) -> None:
        h, w = src.shape[:2]
        x0, y0, x1, y1 = max(0, x), max(0, y), min(dst.shape[1], x + w), min(dst.shape[0], y + h)
        if x1 <= x0 or y1 <= y0:
            return
        part = src[y0 - y:y1 - y, x0 - x:x1 - x]
        if opacity < 255:
            part = part.copy()
            part[..., 3] = (part[..., 3].astype(np.uint16) * opacity // 255).astype(np.uint8)
        composite(dst[y0:y1, x0:x1], part, OVER)
