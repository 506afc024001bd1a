"""Text of a session: what the user typed (keys.py) and what the screen showed (ocr.py).

keys.py      key instructions -> typed lines (no heavy imports)
regions.py   which screen regions to read, and when (debounce, merge, grow)
engine.py    the OCR engine seam and the tesseract adapter
ocr.py       ScreenTextExtractor, extract_text(recording, frames=...) -> (typed, screen)
live.py      LiveText: the same on a live instruction stream
The OCR modules import numpy/OpenCV: import them from their modules.
Text never draws: the frames it reads come from render, handed in by the
worker that runs the stages (``render.frames.screen_frames``).
"""

from gui_recorder.text.items import ScreenText, TypedLine
from gui_recorder.text.keys import KeyDecoder, decode_keys

__all__ = ["KeyDecoder", "ScreenText", "TypedLine", "decode_keys"]
