"""Image streams: `img` opens one, `blob`s carry base64 data, `end` yields the picture.

Streams that are not images (audio, files) are never opened here, so their
blobs are ignored. Limits bound what a recording can make us hold: open
streams, bytes per stream, and pixels per decoded picture.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

import cv2
import numpy as np

MAX_STREAMS = 256
MAX_STREAM_BYTES = 16 << 20
MAX_IMAGE_PIXELS = 4096 * 4096  # guacd sends tiles and dirty rectangles, never larger than a screen
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


@dataclass
class ImageStream:
    mask: int
    layer: int
    x: int
    y: int
    mimetype: str
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class ImageStreams:
    def __init__(self) -> None:
        self.open_streams: dict[str, ImageStream] = {}

    def __len__(self) -> int:
        return len(self.open_streams)

    def open(self, stream: str, entry: ImageStream) -> None:
        if len(self.open_streams) >= MAX_STREAMS and stream not in self.open_streams:
            raise ValueError("too many open streams")
        self.open_streams[stream] = entry

    def append(self, stream: str, data: str) -> None:
        entry = self.open_streams.get(stream)
        if entry is None:
            return  # audio or another non-image stream
        chunk = base64.b64decode(data, validate=True)
        entry.size += len(chunk)
        if entry.size > MAX_STREAM_BYTES:
            del self.open_streams[stream]
            raise ValueError("image stream too large")
        entry.chunks.append(chunk)

    def end(self, stream: str) -> tuple[ImageStream, np.ndarray] | None:
        """The finished stream and its picture (BGRA); None for a stream never opened."""
        entry = self.open_streams.pop(stream, None)
        if entry is None:
            return None
        data = b"".join(entry.chunks)
        _check_png_size(data)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"undecodable {entry.mimetype} image")
        return entry, bgra(image)


def _check_png_size(data: bytes) -> None:
    # Refuse a decompression bomb before decoding it: the PNG header states the size.
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        if width * height > MAX_IMAGE_PIXELS:
            raise ValueError(f"image of {width}x{height} pixels exceeds the limit")


def bgra(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return image
