"""What the text stage produces: typed lines (keys.py) and screen text items (ocr.py)."""

from __future__ import annotations

from dataclasses import dataclass

from gui_recorder.text.keys import TypedLine

__all__ = ["ScreenText", "TypedLine"]


@dataclass
class ScreenText:
    """A run of text read on screen at one place.

    Offsets are ms from the recording's first timestamp: ``first_ms`` when it
    was first read there, ``last_ms`` when it was last seen unchanged (text
    already seen in the same place is not stored again, its ``last_ms`` grows).
    ``confidence`` is tesseract's mean word confidence, 0-100.
    """

    text: str
    x: int
    y: int
    w: int
    h: int
    confidence: float
    first_ms: int
    last_ms: int

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)
