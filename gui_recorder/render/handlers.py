"""One small handler per drawing opcode, and the dispatch table over them.

Each handler takes the display state and the instruction; a bad argument raises
ValueError/IndexError, which ``apply`` (at the end) counts as malformed. Argument
orders are those of guacd (S:src/libguac/protocol.c) and Guacamole's Client.js.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from gui_recorder.protocol import Instruction
from gui_recorder.render.layers import Layer, clip, composite, transfer as raster_op
from gui_recorder.render.paths import bounds, clip_mask, coverage, outline
from gui_recorder.render.streams import IMAGE_TYPES, ImageStream

if TYPE_CHECKING:
    from gui_recorder.render.display import Display

# Opcodes that change nothing on screen: known, so not counted as unknown. `sync` is
# the frame boundary, handled by whoever iterates (frames.py).
IGNORED = frozenset({"sync", "nop", "ready", "args", "name", "ack", "error", "disconnect", "log", "msg", "required",
                     "set", "clipboard", "file", "pipe", "audio", "video", "body", "filesystem", "undefine",
                     "argv", "gr-client", "key", "nest", "distort", "touch", "select", "connect", "timezone",
                     "image", "ping", "gr-typescript"})


# -- layers ---------------------------------------------------------------------------

def size(d: Display, ins: Instruction) -> None:
    layer = d.layer(ins[1])
    width, height = int(ins[2]), int(ins[3])
    d.resize(layer, width, height)
    d.touched(layer, 0, 0, width, height)


def move(d: Display, ins: Instruction) -> None:
    layer = d.layer(ins[1])
    parent, x, y, z = int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5])
    if layer.index <= 0 or parent < 0 or parent == layer.index:
        raise ValueError("only visible layers move, under a visible parent")
    d.touched(layer, 0, 0, layer.width, layer.height)  # where it was
    layer.parent, layer.x, layer.y, layer.z = parent, x, y, z
    d.touched(layer, 0, 0, layer.width, layer.height)  # where it is


def shade(d: Display, ins: Instruction) -> None:
    layer = d.layer(ins[1])
    layer.opacity = max(0, min(255, int(ins[2])))
    d.touched(layer, 0, 0, layer.width, layer.height)


def dispose(d: Display, ins: Instruction) -> None:
    index = int(ins[1])
    layer = d.layers.get(index)
    if layer is None or index == 0:  # the display itself is never freed (Client.js ignores it too)
        return
    d.touched(layer, 0, 0, layer.width, layer.height)
    d.drop(index)


# -- pixels ---------------------------------------------------------------------------

def img(d: Display, ins: Instruction) -> None:
    stream, mask, layer, mimetype, x, y = ins[1], int(ins[2]), int(ins[3]), ins[4], int(ins[5]), int(ins[6])
    if mimetype.split(";")[0].strip().lower() not in IMAGE_TYPES:
        raise ValueError(f"not an image type: {mimetype[:40]}")
    d.streams.open(stream, ImageStream(mask, layer, x, y, mimetype))


def blob(d: Display, ins: Instruction) -> None:
    d.streams.append(ins[1], ins[2])


def end(d: Display, ins: Instruction) -> None:
    done = d.streams.end(ins[1])
    if done is not None:
        entry, image = done
        d.put(d.layer(entry.layer), image, entry.x, entry.y, entry.mask)


def _source(d: Display, ins: Instruction) -> tuple[Layer, int, int, int, int, np.ndarray] | None:
    """The part of the source rectangle (srcL, sx, sy, w, h) that exists, copied."""
    src = d.layer(ins[1])
    sx, sy, w, h = int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5])
    area = clip(src, sx, sy, w, h)
    if area is None:
        return None
    ax, ay, aw, ah = area
    # Taken out first: a copy within one layer may overlap itself.
    return src, ax - sx, ay - sy, aw, ah, src.canvas[ay:ay + ah, ax:ax + aw].copy()


def copy(d: Display, ins: Instruction) -> None:
    mask, dst, dx, dy = int(ins[6]), d.layer(ins[7]), int(ins[8]), int(ins[9])
    taken = _source(d, ins)
    if taken is not None:
        _, ox, oy, _, _, pixels = taken
        d.put(dst, pixels, dx + ox, dy + oy, mask)


def transfer(d: Display, ins: Instruction) -> None:
    function, dst, dx, dy = int(ins[6]), d.layer(ins[7]), int(ins[8]), int(ins[9])
    if not 0 <= function <= 0xF:
        raise ValueError("transfer function out of range")
    taken = _source(d, ins)
    if taken is None:
        return
    _, ox, oy, aw, ah, pixels = taken
    tx, ty = dx + ox, dy + oy
    d.fit(dst, tx, ty, aw, ah)
    target = clip(dst, tx, ty, aw, ah)
    if target is None:
        return
    cx, cy, cw, ch = target
    s = pixels[cy - ty:cy - ty + ch, cx - tx:cx - tx + cw]
    region = dst.canvas[cy:cy + ch, cx:cx + cw]
    region[...] = raster_op(s, region, function)
    d.touched(dst, cx, cy, cw, ch)


# -- paths ------------------------------------------------------------------------------

def rect(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.rect(int(ins[2]), int(ins[3]), int(ins[4]), int(ins[5]))


def start(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.start(int(ins[2]), int(ins[3]))


def line(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.line(int(ins[2]), int(ins[3]))


def curve(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.curve(*(int(v) for v in ins[2:8]))


def arc(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.arc(int(ins[2]), int(ins[3]), int(ins[4]), float(ins[5]), float(ins[6]),
                              ins[7] != "0")


def close(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.close()


def clip_path(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.clip()


def push(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.push()


def pop(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.pop()


def reset(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.reset()


def identity(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.identity()


def transform(d: Display, ins: Instruction) -> None:
    d.layer(ins[1]).paths.transform(*(float(v) for v in ins[2:8]))


def _paint(d: Display, layer: Layer, mask: int, color: tuple[int, int, int, int], stroke: int = 0) -> None:
    """Fill (or stroke, ``stroke`` px wide) the layer's path with a BGRA colour, then drop the path."""
    path = layer.paths.take()
    if not path:
        return
    x, y, w, h = bounds(path)
    if stroke:  # a stroke reaches half its width (and a pixel of rounding) beyond the path
        pad = stroke // 2 + 1
        x, y, w, h = x - pad, y - pad, w + 2 * pad + 1, h + 2 * pad + 1
    d.fit(layer, x, y, w, h)  # a buffer grows to the exact extent of a filled rectangle
    area = clip(layer, x, y, w, h)
    if area is None:
        return
    cx, cy, cw, ch = area
    selected = outline(path, cx, cy, cw, ch, stroke) if stroke else coverage(path, cx, cy, cw, ch)
    if layer.paths.clips:
        selected &= clip_mask(layer.paths, cx, cy, cw, ch)
    if not selected.any():
        return
    region = layer.canvas[cy:cy + ch, cx:cx + cw]
    patch = region[selected]
    composite(patch, np.broadcast_to(np.array(color, np.uint8), patch.shape), mask)
    region[selected] = patch
    ys, xs = np.nonzero(selected)
    d.touched(layer, cx + int(xs.min()), cy + int(ys.min()), int(xs.max() - xs.min()) + 1,
              int(ys.max() - ys.min()) + 1)


def _rgba(values) -> tuple[int, int, int, int]:
    r, g, b, a = (max(0, min(255, int(v))) for v in values)
    return b, g, r, a


def _pattern_colour(src: Layer) -> tuple[int, int, int, int]:
    # A pattern fill is approximated by the pattern's mean colour (guacd never uses it for RDP/VNC updates).
    if not src.canvas.size:
        return 0, 0, 0, 0
    return tuple(int(c) for c in src.canvas.reshape(-1, 4).mean(axis=0))  # type: ignore[return-value]


def cfill(d: Display, ins: Instruction) -> None:
    _paint(d, d.layer(ins[2]), int(ins[1]), _rgba(ins[3:7]))


def lfill(d: Display, ins: Instruction) -> None:
    _paint(d, d.layer(ins[2]), int(ins[1]), _pattern_colour(d.layer(ins[3])))


def cstroke(d: Display, ins: Instruction) -> None:
    # cstroke,mask,layer,cap,join,thickness,r,g,b,a
    _paint(d, d.layer(ins[2]), int(ins[1]), _rgba(ins[6:10]), stroke=max(1, min(256, int(ins[5]))))


def lstroke(d: Display, ins: Instruction) -> None:
    # lstroke,mask,layer,cap,join,thickness,srcLayer
    _paint(d, d.layer(ins[2]), int(ins[1]), _pattern_colour(d.layer(ins[6])), stroke=max(1, min(256, int(ins[5]))))


# -- cursor ---------------------------------------------------------------------------------

def cursor(d: Display, ins: Instruction) -> None:
    hx, hy = int(ins[1]), int(ins[2])
    src = d.layer(ins[3])
    sx, sy, w, h = int(ins[4]), int(ins[5]), int(ins[6]), int(ins[7])
    d.cursor_dirty()
    area = clip(src, sx, sy, w, h)
    d.cursor = None if area is None else src.canvas[area[1]:area[1] + area[3], area[0]:area[0] + area[2]].copy()
    d.hotspot = (hx, hy)
    d.cursor_dirty()


def mouse(d: Display, ins: Instruction) -> None:
    x, y = int(ins[1]), int(ins[2])
    if (x, y) != d.mouse:
        d.cursor_dirty()
        d.mouse = (x, y)
        d.cursor_dirty()


HANDLERS: dict[str, Callable[[Display, Instruction], None]] = {
    "size": size, "move": move, "shade": shade, "dispose": dispose,
    "img": img, "blob": blob, "end": end, "copy": copy, "transfer": transfer,
    "rect": rect, "start": start, "line": line, "curve": curve, "arc": arc, "close": close,
    "clip": clip_path, "push": push, "pop": pop, "reset": reset, "identity": identity, "transform": transform,
    "cfill": cfill, "lfill": lfill, "cstroke": cstroke, "lstroke": lstroke,
    "cursor": cursor, "mouse": mouse,
}


def apply(d: Display, ins: Instruction) -> None:
    """Apply any instruction to the display: unknown opcodes and malformed arguments are counted, never fatal."""
    handler = HANDLERS.get(ins[0])
    if handler is None:
        if ins[0] not in IGNORED:
            d.unknown[ins[0]] += 1
        return
    try:
        handler(d, ins)
    except (ValueError, IndexError, KeyError, OverflowError, cv2.error, binascii.Error, MemoryError):
        d.malformed[ins[0]] += 1
