"""Frames of a recording: the display after each `sync`, with what changed and when."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol import Instruction, Parser
from gui_recorder.protocol.timeline import Origin
from gui_recorder.render.display import Display, Rect
from gui_recorder.render.handlers import apply

# Small enough that a corrupt spot mid-file loses little (the parser cannot resynchronise,
# and the instructions of the chunk that holds the error are not returned).
READ_CHUNK = 1 << 16

Source = bytes | str | Path | BinaryIO | Iterable[bytes]


@dataclass
class StreamReport:
    """What reading a recording found besides frames."""

    instructions: int = 0
    bytes_read: int = 0
    truncated: str | None = None  # why the stream ended early (render kept everything before)
    syncs: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    extra: dict = field(default_factory=dict)


def read_instructions(source: Source, report: StreamReport) -> Iterator[Instruction]:
    """Instructions of a recording: bytes, a path, a binary file object or an iterable of chunks.

    A recording cut mid-instruction (guacd killed) or corrupt part-way ends
    cleanly after the last whole instruction; ``report.truncated`` says why.
    """
    parser = Parser()
    try:
        for chunk in chunks_of(source):
            report.bytes_read += len(chunk)
            for ins in parser.feed(chunk):
                report.instructions += 1
                yield ins
        parser.close()
    except ProtocolError as exc:
        report.truncated = str(exc)


def chunks_of(source: Source) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        for i in range(0, len(data), READ_CHUNK):
            yield data[i:i + READ_CHUNK]
    elif isinstance(source, (str, Path)):
        yield from file_chunks(Path(source))
    elif hasattr(source, "read"):
        while chunk := source.read(READ_CHUNK):
            yield chunk
    else:
        yield from source


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            yield chunk


def sync_timestamp(ins: Instruction) -> int | None:
    if ins[0] == "sync" and len(ins) > 1:
        try:
            return int(ins[1])
        except ValueError:
            return None
    return None


def iter_frames(instructions: Iterable[Instruction], display: Display | None = None,
                report: StreamReport | None = None) -> Iterator[tuple[int, np.ndarray, list[Rect]]]:
    """(offset ms from the first frame, frame BGR, dirty rectangles) at every `sync`.

    The frame is composed only when something changed; otherwise the previous
    array is yielded again (callers must not modify it).
    """
    display = display or Display()
    report = report or StreamReport()
    frame = None
    for ins in instructions:
        ts = sync_timestamp(ins)
        if ts is None:
            apply(display, ins)
            continue
        report.syncs += 1
        if report.first_ts is None:
            report.first_ts = ts
        report.last_ts = ts
        dirty = display.take_dirty()
        if display.width == 0 or display.height == 0:
            continue
        if dirty or frame is None or frame.shape[:2] != (display.height, display.width):
            frame = display.frame()
        yield ts - report.first_ts, frame, dirty


class LiveDisplay:
    """A display fed one instruction at a time (the live text stage): the model and its dispatch together.

    ``Display`` itself knows nothing of instructions; consumers outside render
    that want ``apply(instruction)`` get it here.
    """

    def __init__(self, display: Display | None = None):
        self.display = display or Display()

    def apply(self, instruction: Instruction) -> None:
        apply(self.display, instruction)

    def frame(self, with_cursor: bool = True) -> np.ndarray:
        return self.display.frame(with_cursor=with_cursor)

    def take_dirty(self) -> list[Rect]:
        return self.display.take_dirty()


def screen_frames(instructions: Iterable[Instruction]) -> Iterator[tuple[int, np.ndarray, list[Rect]]]:
    """Frames for the text stage: like ``iter_frames``, but without the mouse cursor, and
    offsets from the first timestamp of any kind (as typed lines have them).

    The cursor is not text: drawn into the frame it would be read next to the
    text it hovers. Its moves still mark rectangles dirty; the rows there are
    unchanged, so the OCR's row cache answers them without the engine.
    """
    display = Display()
    origin = Origin()
    frame = None
    for instruction in instructions:
        offset = origin.observe(instruction)
        if instruction[0] != "sync":
            apply(display, instruction)
            continue
        dirty = display.take_dirty()
        if display.width == 0 or display.height == 0:
            continue
        if dirty or frame is None or frame.shape[:2] != (display.height, display.width):
            frame = display.frame(with_cursor=False)
        yield offset or 0, frame, dirty
