"""The display model: Guacamole drawing instructions applied to layers, as a browser would.

One small handler per opcode in a dispatch table (as guacenc does); unknown or
malformed instructions are counted and skipped, never fatal. Every change to
what is visible is recorded as a dirty rectangle in display coordinates, which
is what the OCR stage reads to look only where the screen changed.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter

import cv2
import numpy as np

from gui_recorder.protocol import Instruction
from gui_recorder.render.layers import MAX_SIDE, OVER, Layer, clip, composite, transfer

Rect = tuple[int, int, int, int]

MAX_LAYERS = 1024
MAX_STREAMS = 256
MAX_STREAM_BYTES = 16 << 20
# Opcodes that carry nothing to draw: known, so not counted as unknown.
IGNORED = frozenset({"nop", "ready", "args", "name", "ack", "error", "disconnect", "log", "msg", "required",
                     "set", "clipboard", "file", "pipe", "audio", "video", "body", "filesystem", "undefine",
                     "argv", "gr-client", "key", "nest", "push", "pop", "reset", "identity", "transform",
                     "clip", "distort", "touch"})


class Display:
    def __init__(self, width: int = 0, height: int = 0):
        self.layers: dict[int, Layer] = {0: Layer(0, width, height)}
        self.streams: dict[str, tuple[int, int, int, int, str, list[bytes]]] = {}
        self.cursor: np.ndarray | None = None
        self.hotspot = (0, 0)
        self.mouse = (0, 0)
        self.unknown: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self._dirty: list[Rect] = []
        self.handlers = {
            "size": self._size, "img": self._img, "blob": self._blob, "end": self._end, "copy": self._copy,
            "transfer": self._transfer, "rect": self._rect, "start": self._start, "line": self._line,
            "arc": self._arc, "curve": self._curve, "close": self._close, "cfill": self._cfill,
            "cstroke": self._cstroke, "lfill": self._lfill, "lstroke": self._cstroke, "move": self._move,
            "shade": self._shade, "dispose": self._dispose, "cursor": self._cursor, "mouse": self._mouse,
        }

    # -- the public face -----------------------------------------------------

    @property
    def width(self) -> int:
        return self.layers[0].width

    @property
    def height(self) -> int:
        return self.layers[0].height

    def apply(self, ins: Instruction) -> None:
        handler = self.handlers.get(ins[0])
        if handler is None:
            if ins[0] not in IGNORED and ins[0] != "sync":
                self.unknown[ins[0]] += 1
            return
        try:
            handler(ins)
        except (ValueError, IndexError, KeyError, cv2.error, binascii.Error, MemoryError):
            self.malformed[ins[0]] += 1

    def take_dirty(self) -> list[Rect]:
        dirty, self._dirty = self._dirty, []
        return dirty

    def frame(self, with_cursor: bool = True) -> np.ndarray:
        """What the user saw: layer 0 with visible layers over it, and the cursor (BGR)."""
        base = self.layers[0].canvas
        children = [layer for i, layer in self.layers.items() if i > 0 and layer.opacity > 0]
        if not children and not (with_cursor and self.cursor is not None):
            return cv2.cvtColor(base, cv2.COLOR_BGRA2BGR)
        out = base.copy()
        for layer in sorted(children, key=lambda layer: layer.z):
            self._draw_onto(out, layer.canvas, *self._absolute(layer), layer.opacity)
        if with_cursor and self.cursor is not None:
            x, y = self.mouse[0] - self.hotspot[0], self.mouse[1] - self.hotspot[1]
            self._draw_onto(out, self.cursor, x, y, 255)
        return cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)

    # -- helpers ---------------------------------------------------------------

    def _layer(self, index: str) -> Layer:
        i = int(index)
        layer = self.layers.get(i)
        if layer is None:
            if len(self.layers) >= MAX_LAYERS:
                raise ValueError("too many layers")
            layer = self.layers[i] = Layer(i)
        return layer

    def _absolute(self, layer: Layer) -> tuple[int, int]:
        x, y, seen = layer.x, layer.y, {layer.index}
        parent = self.layers.get(layer.parent)
        while parent is not None and parent.index != 0 and parent.index not in seen:
            seen.add(parent.index)
            x, y = x + parent.x, y + parent.y
            parent = self.layers.get(parent.parent)
        return x, y

    def _touched(self, layer: Layer, x: int, y: int, w: int, h: int) -> None:
        if layer.index == 0:
            self._dirty.append((x, y, w, h))
        elif layer.index > 0:
            ax, ay = self._absolute(layer)
            self._dirty.append((ax + x, ay + y, w, h))

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

    def _put(self, layer: Layer, image: np.ndarray, x: int, y: int, mask: int) -> None:
        h, w = image.shape[:2]
        layer.fit(x, y, w, h)
        area = clip(layer, x, y, w, h)
        if area is None:
            return
        cx, cy, cw, ch = area
        composite(layer.canvas[cy:cy + ch, cx:cx + cw], image[cy - y:cy - y + ch, cx - x:cx - x + cw], mask)
        self._touched(layer, cx, cy, cw, ch)

    # -- handlers ----------------------------------------------------------------

    def _size(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        width, height = int(ins[2]), int(ins[3])
        if not (0 <= width <= MAX_SIDE and 0 <= height <= MAX_SIDE):
            raise ValueError("layer size out of bounds")
        layer.resize(width, height)
        if layer.index >= 0:
            self._touched(layer, 0, 0, width, height)

    def _img(self, ins: Instruction) -> None:
        stream, mask, layer, mimetype, x, y = ins[1], int(ins[2]), int(ins[3]), ins[4], int(ins[5]), int(ins[6])
        if len(self.streams) >= MAX_STREAMS and stream not in self.streams:
            raise ValueError("too many open streams")
        self.streams[stream] = (mask, layer, x, y, mimetype, [])

    def _blob(self, ins: Instruction) -> None:
        entry = self.streams.get(ins[1])
        if entry is None:
            return  # audio or another non-image stream
        chunks = entry[5]
        chunks.append(base64.b64decode(ins[2]))
        if sum(len(c) for c in chunks) > MAX_STREAM_BYTES:
            del self.streams[ins[1]]
            raise ValueError("image stream too large")

    def _end(self, ins: Instruction) -> None:
        entry = self.streams.pop(ins[1], None)
        if entry is None:
            return
        mask, index, x, y, _mimetype, chunks = entry
        image = cv2.imdecode(np.frombuffer(b"".join(chunks), np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError("undecodable image")
        self._put(self._layer(str(index)), _bgra(image), x, y, mask)

    def _copy(self, ins: Instruction) -> None:
        src = self._layer(ins[1])
        sx, sy, w, h, mask = int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5]), int(ins[6])
        dst = self._layer(ins[7])
        dx, dy = int(ins[8]), int(ins[9])
        area = clip(src, sx, sy, w, h)
        if area is None:
            return
        ax, ay, aw, ah = area
        # A copy within one layer may overlap itself: take the source first.
        self._put(dst, src.canvas[ay:ay + ah, ax:ax + aw].copy(), dx + ax - sx, dy + ay - sy, mask)

    def _transfer(self, ins: Instruction) -> None:
        src = self._layer(ins[1])
        sx, sy, w, h, function = int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5]), int(ins[6])
        dst = self._layer(ins[7])
        dx, dy = int(ins[8]), int(ins[9])
        area = clip(src, sx, sy, w, h)
        if area is None:
            return
        ax, ay, aw, ah = area
        tx, ty = dx + ax - sx, dy + ay - sy
        dst.fit(tx, ty, aw, ah)
        target = clip(dst, tx, ty, aw, ah)
        if target is None:
            return
        cx, cy, cw, ch = target
        s = src.canvas[ay + cy - ty:ay + cy - ty + ch, ax + cx - tx:ax + cx - tx + cw]
        d = dst.canvas[cy:cy + ch, cx:cx + cw]
        d[...] = transfer(s, d, function)
        self._touched(dst, cx, cy, cw, ch)

    def _rect(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        x, y, w, h = int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5])
        layer.path.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.int32))

    def _start(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        if len(layer.subpath) > 1:
            layer.path.append(np.array(layer.subpath, np.int32))
        layer.subpath = [(int(ins[2]), int(ins[3]))]

    def _line(self, ins: Instruction) -> None:
        self._layer(ins[1]).subpath.append((int(ins[2]), int(ins[3])))

    def _curve(self, ins: Instruction) -> None:
        # curve,layer,cp1x,cp1y,cp2x,cp2y,x,y: its end point is close enough for fills.
        self._layer(ins[1]).subpath.append((int(ins[6]), int(ins[7])))

    def _arc(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        x, y, r = int(ins[2]), int(ins[3]), int(ins[4])
        start, end = float(ins[5]), float(ins[6])
        steps = np.linspace(start, end if end > start else end + 2 * np.pi, 16)
        layer.subpath.extend((int(x + r * np.cos(a)), int(y + r * np.sin(a))) for a in steps)

    def _close(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        if len(layer.subpath) > 1:
            layer.path.append(np.array(layer.subpath, np.int32))
        layer.subpath = []

    def _take_path(self, layer: Layer) -> list[np.ndarray]:
        if len(layer.subpath) > 1:
            layer.path.append(np.array(layer.subpath, np.int32))
        path, layer.path, layer.subpath = layer.path, [], []
        return path

    def _fill(self, layer: Layer, mask: int, color: tuple[int, int, int, int]) -> None:
        path = self._take_path(layer)
        if not path:
            return
        points = np.concatenate(path)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        layer.fit(int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        area = clip(layer, int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        if area is None:
            return
        cx, cy, cw, ch = area
        cover = np.zeros((ch, cw), np.uint8)
        for poly in path:
            xs, ys = poly[:, 0], poly[:, 1]
            if len(poly) == 4 and xs[0] == xs[3] and ys[0] == ys[1]:  # an axis-aligned rect: exact
                cover[max(0, ys[0] - cy):max(0, ys[2] - cy), max(0, xs[0] - cx):max(0, xs[1] - cx)] = 255
            else:
                cv2.fillPoly(cover, [poly - [cx, cy]], 255)
        selected = cover > 0
        if not selected.any():
            return
        region = layer.canvas[cy:cy + ch, cx:cx + cw]
        patch = region[selected]
        composite(patch, np.broadcast_to(np.array(color, np.uint8), patch.shape), mask)
        region[selected] = patch
        self._touched(layer, cx, cy, cw, ch)

    def _cfill(self, ins: Instruction) -> None:
        mask, layer = int(ins[1]), self._layer(ins[2])
        r, g, b, a = (int(v) for v in ins[3:7])
        self._fill(layer, mask, (b, g, r, a))

    def _lfill(self, ins: Instruction) -> None:
        # lfill,mask,layer,srcLayer: a pattern fill; the source's mean colour approximates it.
        mask, layer, src = int(ins[1]), self._layer(ins[2]), self._layer(ins[3])
        color = tuple(int(c) for c in src.canvas.reshape(-1, 4).mean(axis=0)) if src.canvas.size else (0, 0, 0, 0)
        self._fill(layer, mask, color)

    def _cstroke(self, ins: Instruction) -> None:
        # Strokes outline the path; guacd uses them rarely (never for RDP/VNC screen updates).
        layer = self._layer(ins[2])
        path = self._take_path(layer)
        if ins[0] == "cstroke" and len(ins) >= 11 and path:
            thickness = max(1, int(ins[5]))
            r, g, b, a = (int(v) for v in ins[6:10])
            cv2.polylines(layer.canvas, path, True, (b, g, r, a), thickness)
            points = np.concatenate(path)
            x0, y0 = points.min(axis=0)
            x1, y1 = points.max(axis=0)
            self._touched(layer, int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1)

    def _move(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        if layer.index <= 0:
            return
        before = (*self._absolute(layer), layer.width, layer.height)
        layer.parent, layer.x, layer.y, layer.z = int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5])
        self._dirty.append(before)
        self._touched(layer, 0, 0, layer.width, layer.height)

    def _shade(self, ins: Instruction) -> None:
        layer = self._layer(ins[1])
        layer.opacity = max(0, min(255, int(ins[2])))
        if layer.index > 0:
            self._touched(layer, 0, 0, layer.width, layer.height)

    def _dispose(self, ins: Instruction) -> None:
        index = int(ins[1])
        layer = self.layers.get(index)
        if layer is None or index == 0:
            return
        if index > 0:
            self._touched(layer, 0, 0, layer.width, layer.height)
        del self.layers[index]

    def _cursor(self, ins: Instruction) -> None:
        hx, hy = int(ins[1]), int(ins[2])
        src = self._layer(ins[3])
        sx, sy, w, h = int(ins[4]), int(ins[5]), int(ins[6]), int(ins[7])
        area = clip(src, sx, sy, w, h)
        self.cursor = None if area is None else src.canvas[area[1]:area[1] + area[3], area[0]:area[0] + area[2]].copy()
        self.hotspot = (hx, hy)
        self._cursor_dirty()

    def _mouse(self, ins: Instruction) -> None:
        self._cursor_dirty()
        self.mouse = (int(ins[1]), int(ins[2]))
        self._cursor_dirty()

    def _cursor_dirty(self) -> None:
        if self.cursor is not None:
            h, w = self.cursor.shape[:2]
            self._dirty.append((self.mouse[0] - self.hotspot[0], self.mouse[1] - self.hotspot[1], w, h))


def _bgra(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return image
