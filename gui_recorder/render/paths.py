"""Paths of a layer: what `rect`, `start`, `line`, `arc`, `curve`, `close` build and
`cfill`/`cstroke`/`lfill`/`lstroke`/`clip` consume, with the canvas state that
`push`/`pop`/`reset`/`identity`/`transform` change.

The semantics are those of Guacamole.Layer over an HTML canvas: points are
transformed when they are added; a fill or stroke consumes the path; `clip`
intersects the clipping region with the path; `push`/`pop` save and restore the
transform and clip. Rectangles with an axis-aligned transform are rasterised
exactly (a canvas fills [x, x+w) x [y, y+h)); other shapes approximately, as
polygons (guacd sends them only for rare drawing, never for RDP/VNC screen updates).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MAX_POINTS = 65536  # bound on one path: a hostile recording cannot grow it without end
MAX_SAVED = 64  # bound on push depth
ARC_STEPS = 24
CURVE_STEPS = 12
IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # a, b, c, d, e, f as canvas setTransform

Matrix = tuple[float, float, float, float, float, float]


class PathState:
    """The path being built on one layer, and its transform/clip state."""

    __slots__ = ("polygons", "points", "npoints", "matrix", "clips", "saved")

    def __init__(self) -> None:
        self.polygons: list[np.ndarray] = []  # finished subpaths, (N, 2) float, layer coordinates
        self.points: list[tuple[float, float]] = []  # the open subpath
        self.npoints = 0
        self.matrix: Matrix = IDENTITY
        self.clips: list[list[np.ndarray]] = []  # each entry a region; the clip is their intersection
        self.saved: list[tuple[Matrix, list[list[np.ndarray]]]] = []

    # -- building -------------------------------------------------------------

    def _map(self, x: float, y: float) -> tuple[float, float]:
        a, b, c, d, e, f = self.matrix
        return a * x + c * y + e, b * x + d * y + f

    def _count(self, n: int) -> None:
        self.npoints += n
        if self.npoints > MAX_POINTS:
            self.polygons, self.points, self.npoints = [], [], 0
            raise ValueError("path has too many points")

    def _finish(self) -> None:
        if len(self.points) > 1:
            self.polygons.append(np.array(self.points, np.float64))
        self.points = []

    def rect(self, x: float, y: float, w: float, h: float) -> None:
        self._finish()
        self._count(4)
        self.polygons.append(np.array([self._map(x, y), self._map(x + w, y), self._map(x + w, y + h),
                                       self._map(x, y + h)], np.float64))

    def start(self, x: float, y: float) -> None:
        self._finish()
        self._count(1)
        self.points = [self._map(x, y)]

    def line(self, x: float, y: float) -> None:
        self._count(1)
        self.points.append(self._map(x, y))

    def curve(self, c1x: float, c1y: float, c2x: float, c2y: float, x: float, y: float) -> None:
        self._count(CURVE_STEPS)
        x0, y0 = self.points[-1] if self.points else self._map(c1x, c1y)
        p1, p2, p3 = self._map(c1x, c1y), self._map(c2x, c2y), self._map(x, y)
        if not self.points:
            self.points = [(x0, y0)]
        for i in range(1, CURVE_STEPS + 1):  # cubic Bezier, sampled
            t = i / CURVE_STEPS
            u = 1 - t
            self.points.append((u ** 3 * x0 + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t ** 3 * p3[0],
                                u ** 3 * y0 + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t ** 3 * p3[1]))

    def arc(self, x: float, y: float, r: float, start: float, end: float, negative: bool) -> None:
        if not (math.isfinite(start) and math.isfinite(end) and math.isfinite(r)) or r < 0:
            raise ValueError("bad arc")
        self._count(ARC_STEPS + 1)
        if negative:
            while end > start:
                end -= 2 * math.pi
        else:
            while end < start:
                end += 2 * math.pi
        for a in np.linspace(start, end, ARC_STEPS + 1):
            self.points.append(self._map(x + r * math.cos(a), y + r * math.sin(a)))

    def close(self) -> None:
        self._finish()

    def take(self) -> list[np.ndarray]:
        """The path, consumed (a fill, stroke or clip ends it, as on a Guacamole layer)."""
        self._finish()
        path, self.polygons, self.npoints = self.polygons, [], 0
        return path

    # -- canvas state -----------------------------------------------------------

    def clip(self) -> None:
        path = self.take()
        self.clips.append(path)

    def push(self) -> None:
        if len(self.saved) >= MAX_SAVED:
            raise ValueError("push stack too deep")
        self.saved.append((self.matrix, list(self.clips)))

    def pop(self) -> None:
        if self.saved:
            self.matrix, self.clips = self.saved.pop()

    def reset(self) -> None:
        """Guacamole.Layer.reset: clear the stack, the path, the transform and the clip."""
        self.__init__()

    def identity(self) -> None:
        self.matrix = IDENTITY

    def transform(self, a: float, b: float, c: float, d: float, e: float, f: float) -> None:
        if not all(math.isfinite(v) for v in (a, b, c, d, e, f)):
            raise ValueError("bad transform")
        a0, b0, c0, d0, e0, f0 = self.matrix
        self.matrix = (a0 * a + c0 * b, b0 * a + d0 * b, a0 * c + c0 * d, b0 * c + d0 * d,
                       a0 * e + c0 * f + e0, b0 * e + d0 * f + f0)


def bounds(path: list[np.ndarray]) -> tuple[int, int, int, int]:
    points = np.concatenate(path)
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def coverage(path: list[np.ndarray], x: int, y: int, w: int, h: int) -> np.ndarray:
    """A (h, w) bool mask of the pixels the path covers, in the window at (x, y)."""
    cover = np.zeros((h, w), np.uint8)
    for poly in path:
        if _is_box(poly):  # exact: a canvas fills [x0, x1) x [y0, y1)
            x0, y0 = np.rint(poly.min(axis=0)).astype(int)
            x1, y1 = np.rint(poly.max(axis=0)).astype(int)
            cover[max(0, y0 - y):max(0, y1 - y), max(0, x0 - x):max(0, x1 - x)] = 1
        else:
            cv2.fillPoly(cover, [np.rint(poly - [x, y]).astype(np.int32)], 1)
    return cover.astype(bool)


def outline(path: list[np.ndarray], x: int, y: int, w: int, h: int, thickness: int) -> np.ndarray:
    cover = np.zeros((h, w), np.uint8)
    cv2.polylines(cover, [np.rint(p - [x, y]).astype(np.int32) for p in path], True, 1, max(1, thickness))
    return cover.astype(bool)


def clip_mask(state: PathState, x: int, y: int, w: int, h: int) -> np.ndarray | None:
    mask = None
    for region in state.clips:
        inside = coverage(region, x, y, w, h) if region else np.zeros((h, w), bool)
        mask = inside if mask is None else mask & inside
    return mask


def _is_box(poly: np.ndarray) -> bool:
    if len(poly) != 4:
        return False
    xs, ys = poly[:, 0], poly[:, 1]
    return bool((xs[0] == xs[3] and xs[1] == xs[2] and ys[0] == ys[1] and ys[2] == ys[3])
                or (ys[0] == ys[3] and ys[1] == ys[2] and xs[0] == xs[1] and xs[2] == xs[3]))
