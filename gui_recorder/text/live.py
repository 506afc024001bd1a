"""The text stage on a live session: instructions in as they are relayed, text out.

``LiveText`` drives a display model (render's ``Display``: ``apply``,
``frame(with_cursor=False)``, ``take_dirty``), the key decoder and the screen-text extractor
from one instruction stream, all measured from the recording's first
timestamp. The display is injected: the live pipeline passes render's, unit
tests a small stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gui_recorder.protocol import Instruction
from gui_recorder.text.engine import OcrEngine
from gui_recorder.text.items import ScreenText, TypedLine
from gui_recorder.text.keys import KeyDecoder
from gui_recorder.text.ocr import ScreenTextExtractor
from gui_recorder.text.regions import Rect
from gui_recorder.text.terminal import PrintedLine, TerminalDecoder
from gui_recorder.text.transfers import Transfer, TransferDecoder
from gui_recorder.protocol.timeline import Origin


class DisplayModel(Protocol):
    def apply(self, instruction: Instruction) -> None: ...
    def frame(self, with_cursor: bool = True) -> np.ndarray: ...
    def take_dirty(self) -> list[Rect]: ...


@dataclass
class TextUpdate:
    typed: list[TypedLine] = field(default_factory=list)
    screen: list[ScreenText] = field(default_factory=list)
    printed: list[PrintedLine] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.typed or self.screen or self.printed or self.transfers)


class LiveText:
    def __init__(self, display: DisplayModel, engine: OcrEngine, **extractor_options):
        self.display = display
        self.origin = Origin()
        self.keys = KeyDecoder(self.origin)
        self.printed = TerminalDecoder(self.origin)
        self.transfers = TransferDecoder(self.origin)
        self.screen = ScreenTextExtractor(engine, **extractor_options)

    def feed(self, instruction: Instruction) -> TextUpdate:
        """Apply one instruction; return the lines and screen text it completed."""
        update = TextUpdate(typed=self.keys.feed(instruction), printed=self.printed.feed(instruction),
                            transfers=self.transfers.feed(instruction))
        offset = self.origin.observe(instruction)
        # Every instruction goes to the display (mouse moves its cursor; it
        # counts and skips what it does not draw).
        self.display.apply(instruction)
        if instruction[0] == "sync" and offset is not None:
            # Without the cursor: it is not text (see ocr.screen_frames).
            frame = self.display.frame(with_cursor=False)
            update.screen = self.screen.feed_frame(offset, frame, self.display.take_dirty())
        elif offset is not None:
            update.screen = self.screen.advance(offset)
        return update

    def close(self) -> TextUpdate:
        """The end of the session: the line being typed and the text still settling."""
        return TextUpdate(self.keys.flush(), self.screen.flush(), self.printed.flush(), self.transfers.flush())

    @property
    def items(self) -> list[ScreenText]:
        """Every screen item so far (their ``last_ms`` keep growing until ``close``)."""
        return self.screen.items
