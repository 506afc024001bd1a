"""The live text stage: one instruction stream in, typed lines and screen text out."""

from __future__ import annotations

import numpy as np

from gui_recorder.protocol import Instruction as I
from gui_recorder.text.engine import OcrLine
from gui_recorder.text.live import LiveText
from support.keys import RETURN


class RectDisplay:
    """A stand-in for render's Display that draws ``rect`` + ``cfill`` on layer 0
    (real Guacamole drawing instructions), enough to put 'text' on screen."""

    def __init__(self, width=320, height=120):
        self._frame = np.full((height, width, 3), 255, np.uint8)
        self._path: list[tuple[int, int, int, int]] = []
        self._dirty: list[tuple[int, int, int, int]] = []
        self.skipped = 0

    def apply(self, ins):
        if ins[0] == "rect" and ins[1] == "0":
            self._path.append(tuple(int(v) for v in ins[2:6]))
        elif ins[0] == "cfill" and ins[2] == "0":
            for x, y, w, h in self._path:
                self._frame[y:y + h, x:x + w] = [int(ins[5]), int(ins[4]), int(ins[3])]
                self._dirty.append((x, y, w, h))
            self._path = []
        else:
            self.skipped += 1

    def frame(self, with_cursor=True):
        return self._frame

    def take_dirty(self):
        dirty, self._dirty = self._dirty, []
        return dirty


class LevelEngine:
    """Reads a label by its grey level (see test_text_regions.BoardEngine)."""

    names = {40: "deploy finished", 70: "disk quota warning"}

    def read(self, image):
        gray = image if image.ndim == 2 else image[:, :, 0]
        out = []
        for level, text in self.names.items():
            ys, xs = np.nonzero(gray == level)
            if ys.size:
                out.append(OcrLine(text, int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1,
                                   88.0))
        return out


def label(level, x, y, w=80, h=12):
    """A 'text' block drawn as glyph-like strokes: fill, then blank every third column."""
    out = [I("rect", 0, x, y, w, h), I("cfill", 14, 0, level, level, level, 255)]
    for cx in range(x + 2, x + w, 3):
        out.append(I("rect", 0, cx, y, 1, h))
    out.append(I("cfill", 14, 0, 255, 255, 255, 255))
    return out


def test_live_stream_gives_typed_lines_and_screen_text_with_offsets():
    live = LiveText(RectDisplay(), LevelEngine(), batch_ms=0)
    stream = [I("sync", 10_000)]
    stream += label(40, 10, 10) + [I("sync", 10_500)]
    for ts, ch in enumerate("make", start=11_000):
        stream += [I("key", ord(ch), 1, ts), I("key", ord(ch), 0, ts)]
    stream += [I("key", RETURN, 1, 11_100)]
    stream += [I("sync", 11_600)]  # 1.1 s after the label: it settled
    stream += label(70, 10, 60) + [I("sync", 12_000)]
    typed, screen = [], []
    for ins in stream:
        update = live.feed(ins)
        typed += update.typed
        screen += update.screen
    assert [t.text for t in typed] == ["make"] and typed[0].start_ms == 1000
    assert [(s.text, s.first_ms) for s in screen] == [("deploy finished", 500)]
    end = live.close()
    assert [(s.text, s.first_ms) for s in end.screen] == [("disk quota warning", 2000)]
    assert live.items[0].last_ms == 2000
    assert live.display.skipped >= 4  # sync and key instructions, counted and skipped


def rect_frames(instructions):
    """Frames of RectDisplay at each sync: the ``frames`` seam of extract_text."""
    display = RectDisplay()
    for ins in instructions:
        display.apply(ins)
        if ins[0] == "sync":
            yield int(ins[1]), display.frame(), display.take_dirty()


def test_extract_text_on_a_recording_file_and_a_damaged_one(tmp_path):
    from gui_recorder.protocol import encode
    from gui_recorder.text.ocr import extract_text

    stream = [I("sync", 5000)] + label(40, 10, 10) + [I("sync", 5200)]
    stream += [I("key", ord("w"), 1, 5300), I("key", ord("w"), 0, 5310), I("key", RETURN, 1, 5400)]
    stream += [I("sync", 7000)]
    wire = "".join(encode(i) for i in stream).encode()
    path = tmp_path / "rec"
    path.write_bytes(wire + b"4.sync,2.")  # cut off mid-instruction, as after a crash
    typed, screen = extract_text(path, engine=LevelEngine(), frames=rect_frames)
    assert [(t.text, t.start_ms) for t in typed] == [("w", 300)]
    assert [(s.text, s.first_ms) for s in screen] == [("deploy finished", 200)]

    # Malformed part-way: what was read before the bad spot is kept (the
    # parser reads 64 KiB at a time; the chunk holding the bad spot is lost).
    from gui_recorder.text.ocr import READ_CHUNK

    copies = 2 * READ_CHUNK // len(wire) + 2
    path.write_bytes(wire * copies + b"4.sync,x.5000;" + wire)
    result = extract_text(path, engine=LevelEngine(), frames=rect_frames)
    assert result.damaged and "offset" in result.damaged
    assert 0 < len(result.typed) < copies and {t.text for t in result.typed} == {"w"}
