"""Layers and buffers of the Guacamole display, and how pixels are combined.

Each layer is a BGRA canvas. Layer 0 is the display; layers > 0 are visible
layers composited over their parent at (x, y) in z order with an opacity;
layers < 0 are off-screen buffers that grow to fit what is drawn into them.
"""

from __future__ import annotations

import numpy as np

from gui_recorder.render.paths import PathState

MAX_SIDE = 8192  # bound on any layer dimension: a hostile or corrupt recording cannot exhaust memory

# Guacamole channel masks (guacamole/protocol-types.h) guacd really sends.
ROUT = 0x2
SRC = 0xC
OVER = 0xE


class Layer:
    __slots__ = ("index", "canvas", "x", "y", "z", "parent", "opacity", "paths", "grows")

    def __init__(self, index: int, width: int = 0, height: int = 0):
        self.index = index
        self.canvas = np.zeros((max(0, height), max(0, width), 4), np.uint8)
        self.x = self.y = self.z = 0
        self.parent = 0
        self.opacity = 255
        self.paths = PathState()
        self.grows = index < 0

    @property
    def width(self) -> int:
        return self.canvas.shape[1]

    @property
    def height(self) -> int:
        return self.canvas.shape[0]

    def resize(self, width: int, height: int) -> None:
        """New size, pixels anchored top-left (as Guacamole.Layer.resize)."""
        if (height, width) == self.canvas.shape[:2]:
            return
        canvas = np.zeros((height, width, 4), np.uint8)
        h, w = min(height, self.height), min(width, self.width)
        canvas[:h, :w] = self.canvas[:h, :w]
        self.canvas = canvas

    def fitted(self, x: int, y: int, w: int, h: int) -> tuple[int, int] | None:
        """The size a buffer must grow to so that (x, y, w, h) fits; None if it fits (or never grows)."""
        if self.grows and (x + w > self.width or y + h > self.height):
            return max(self.width, x + w), max(self.height, y + h)
        return None


def clip(layer: Layer, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(layer.width, x + w), min(layer.height, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def composite(dst: np.ndarray, src: np.ndarray, mask: int) -> None:
    """Draw ``src`` (BGRA) onto ``dst`` (BGRA, same shape) with a Guacamole channel mask."""
    if mask == SRC or (mask == OVER and src[..., 3].min() == 255):
        dst[...] = src
    elif mask == OVER:
        alpha = src[..., 3:4].astype(np.uint16)
        dst[..., :3] = ((src[..., :3] * alpha + dst[..., :3] * (255 - alpha)) // 255).astype(np.uint8)
        dst[..., 3:4] = np.maximum(dst[..., 3:4], src[..., 3:4])
    elif mask == ROUT:
        # Destination kept only where the source is transparent: guacd clears before translucent PNGs.
        keep = (255 - src[..., 3:4].astype(np.uint16))
        dst[...] = (dst * keep // 255).astype(np.uint8)
    else:
        # Rarer Porter-Duff modes (ATOP, XOR, IN...) are not sent by guacd for RDP/VNC: treat as OVER.
        composite(dst, src, OVER)


# Binary raster operations of `transfer` (guacamole/protocol-types.h): result bit for
# (S, D) is bit ((1-S) << 1 | (1-D)) of the function code.
def transfer(src: np.ndarray, dst: np.ndarray, function: int) -> np.ndarray:
    s, d = src[..., :3], dst[..., :3]
    out = np.zeros_like(s)
    if function & 0x1:
        out |= s & d
    if function & 0x2:
        out |= s & ~d
    if function & 0x4:
        out |= ~s & d
    if function & 0x8:
        out |= ~s & ~d
    result = dst.copy()
    result[..., :3] = out
    result[..., 3] = 255
    return result
