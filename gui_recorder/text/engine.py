"""The OCR engine seam and its tesseract adapter.

``OcrEngine`` is the small protocol the region logic calls; unit tests inject
a fast fake, accuracy tests and production use ``TesseractEngine`` (real
tesseract 5.3 through pytesseract). pytesseract's errors are translated into
``OcrError`` here, at the adapter (STYLE.md, practice 7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from gui_recorder.errors import OcrError
from gui_recorder.index.query import CJK

# Larger crops are refused: a region is at most a screen (limits on input).
MAX_REGION_PIXELS = 4096 * 4096
_HAS_WORD = re.compile(r"\w")
# tesseract's models for scripts written without spaces (the CJK of index/query.py).
CJK_MODELS = ("chi_sim", "chi_tra", "jpn", "kor")


@dataclass(frozen=True)
class OcrLine:
    """A line of text read in an image; the box is in the image's pixels."""

    text: str
    x: int
    y: int
    w: int
    h: int
    confidence: float  # mean word confidence, 0-100


class OcrEngine(Protocol):
    def read(self, image: np.ndarray) -> list[OcrLine]:
        """Lines of text in ``image`` (H, W, 3 BGR or H, W gray), boxes in its pixels."""
        ...


def prepare(image: np.ndarray, scale: float) -> np.ndarray:
    """Grayscale, dark-on-light, upscaled: what tesseract reads best.

    Screen fonts are 8-13 px high, tesseract's sweet spot is ~30 px caps, so we
    scale 2-3x (cubic keeps strokes smooth). Light text on a dark background
    (terminals, dark themes) is inverted: tesseract's models expect dark ink.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if float(np.median(gray)) < 128:
        gray = 255 - gray
    if scale != 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    # A white border: glyphs touching the crop edge are otherwise often lost.
    return cv2.copyMakeBorder(gray, 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255)


# Text rows about this tall (glyphs plus a little space) read best; measured
# on xterm 14 pt and Tk/DejaVu 9 pt: 2x for the first, 3x for the second.
TARGET_ROW_PX = 48.0
MIN_SCALE, MAX_SCALE = 1.5, 3.0


def auto_scale(image: np.ndarray) -> float:
    from gui_recorder.text.regions import text_rows

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    heights = [h for _x, _y, _w, h in text_rows(gray)]
    if not heights:
        return 2.5
    return float(min(MAX_SCALE, max(MIN_SCALE, TARGET_ROW_PX / float(np.median(heights)))))


class TesseractEngine:
    """tesseract via pytesseract, one subprocess per region.

    ``psm`` 11 (sparse text) finds scattered UI labels and terminal lines
    alike; ``min_confidence`` drops the noise tesseract reads in icons.
    ``scale=None`` picks the scale from the height of the image's text rows
    (see ``auto_scale``): small UI fonts get 3x, big terminal fonts ~2x, and
    tesseract's cost grows with the pixels it is given.
    """

    def __init__(self, lang: str = "eng", scale: float | None = None, psm: int = 11,
                 min_confidence: float = 40.0, timeout_s: float = 30.0):
        import pytesseract

        self._pt = pytesseract
        self.lang, self.scale, self.psm = lang, scale, psm
        # With Latin or Cyrillic models beside a CJK one, tesseract reads about one CJK word in ten as
        # Latin letters (often the first words of a line: "系统错误" as "ARE ЕЕ"); the CJK model alone
        # misses about one in forty. So images where the mixed pass saw CJK are read a second time
        # with the CJK models alone, and their CJK words replace what the mixed pass read there.
        models = lang.split("+")
        cjk = [m for m in models if m.split("_vert")[0] in CJK_MODELS]
        self.cjk_lang = "+".join(cjk) if cjk and len(cjk) < len(models) else None
        self.min_confidence, self.timeout_s = min_confidence, timeout_s
        # tesseract's OpenMP threads would fight over the cores for each small crop: the worker
        # sets OMP_THREAD_LIMIT from the `ocr_threads` setting for its processes (cli.cmd_worker).

    def read(self, image: np.ndarray) -> list[OcrLine]:
        if image.size == 0:
            return []
        if image.shape[0] * image.shape[1] > MAX_REGION_PIXELS:
            raise OcrError(f"region of {image.shape[1]}x{image.shape[0]} pixels is too large to OCR")
        scale = self.scale or auto_scale(image)
        prepared = prepare(image, scale)
        words = self._words(prepared, self.lang, image.shape)
        if self.cjk_lang and any(CJK.search(w[4]) for w in words):
            words = merge_cjk(words, [w for w in self._words(prepared, self.cjk_lang, image.shape)
                                      if CJK.search(w[4])])
        return self._lines(words, scale)

    def _words(self, prepared: np.ndarray, lang: str, shape: tuple) -> list[tuple]:
        """(left, top, width, height, text, confidence) of the words read, in the prepared image's pixels."""
        try:
            data = self._pt.image_to_data(prepared, lang=lang, config=f"--psm {self.psm} -c tessedit_do_invert=0",
                                          output_type=self._pt.Output.DICT, timeout=self.timeout_s)
        except self._pt.TesseractNotFoundError as exc:
            raise OcrError("tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-eng)") from exc
        except (self._pt.TesseractError, RuntimeError, OSError) as exc:
            raise OcrError(f"tesseract ({lang}) failed on a {shape[1]}x{shape[0]} region: {exc}") from exc
        words = []
        for i, word in enumerate(data["text"]):
            word = word.strip()
            conf = float(data["conf"][i])
            if not word or conf < self.min_confidence or not _HAS_WORD.search(word):
                continue
            words.append((data["left"][i], data["top"][i], data["width"][i], data["height"][i], word, conf))
        return words

    def _lines(self, words: list[tuple], s: float) -> list[OcrLine]:
        border = 10
        return [OcrLine(join_words([w[4] for w in line]),
                        max(0, round((line[0][0] - border) / s)),
                        max(0, round((min(w[1] for w in line) - border) / s)),
                        max(1, round((max(w[0] + w[2] for w in line) - line[0][0]) / s)),
                        max(1, round((max(w[1] + w[3] for w in line) - min(w[1] for w in line)) / s)),
                        sum(w[5] for w in line) / len(line))
                for line in group_lines(words)]


def merge_cjk(mixed: list[tuple], cjk: list[tuple]) -> list[tuple]:
    """The mixed pass's words, with the CJK pass's words in their place where that pass read better.

    Words are (left, top, width, height, text, confidence), as TesseractEngine._words gives them, and
    two overlap when they share half the smaller box. A CJK word takes the place of the mixed words it
    overlaps when they too hold CJK, or when it is read with more confidence than any of them: the
    CJK model alone reads Cyrillic as CJK too ("журнал"), with less confidence than the mixed pass.
    """
    def overlap(a: tuple, b: tuple) -> bool:
        dx = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        dy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        return dx > 0 and dy > 0 and dx * dy >= 0.5 * min(a[2] * a[3], b[2] * b[3])

    dropped: set[int] = set()
    taken = []
    for word in cjk:
        under = [i for i, m in enumerate(mixed) if overlap(m, word)]
        if not under or any(CJK.search(mixed[i][4]) for i in under) or word[5] > max(mixed[i][5] for i in under):
            dropped.update(under)
            taken.append(word)
    return [m for i, m in enumerate(mixed) if i not in dropped] + taken


def join_words(words: list[str]) -> str:
    """Words of one line as text. Between two CJK characters no space: tesseract's chi_sim and jpn
    report each character or two as a word of its own ('中 文 测试'), and the text on screen has none."""
    out = words[0] if words else ""
    for word in words[1:]:
        out += ("" if CJK.match(out[-1]) and CJK.match(word[0]) else " ") + word
    return out


def group_lines(words: list[tuple]) -> list[list[tuple]]:
    """Words (left, top, width, height, ...) -> lines, each sorted left to right.

    Sparse-text mode reports scattered words as separate blocks; we rebuild
    lines ourselves: words overlapping vertically by half their height are on
    one row, and a gap wider than three heights (a column gap) starts a new line.
    Lines make phrase search work ("echo amber falcon").
    """
    rows: list[list[tuple]] = []
    for word in sorted(words, key=lambda w: (w[1] + w[3] / 2, w[0])):
        middle = word[1] + word[3] / 2
        for row in rows:
            top = min(w[1] for w in row)
            bottom = max(w[1] + w[3] for w in row)
            if top <= middle <= bottom or abs((top + bottom) / 2 - middle) < word[3] / 2:
                row.append(word)
                break
        else:
            rows.append([word])
    lines: list[list[tuple]] = []
    for row in rows:
        row.sort(key=lambda w: w[0])
        height = max(w[3] for w in row)
        current = [row[0]]
        for word in row[1:]:
            previous = current[-1]
            if word[0] - (previous[0] + previous[2]) > 3 * height:
                lines.append(current)
                current = [word]
            else:
                current.append(word)
        lines.append(current)
    return lines
