"""Which regions get OCR'd and when (regions.py, ocr.py) with an injected engine.

The engine here reads text we drew ourselves from a lookup of where we drew
it, so the region logic (debounce, merge, grow, dedup) is tested fast; the
accuracy tests (test_text_accuracy.py) use the real tesseract.
"""

from __future__ import annotations

import numpy as np
import pytest

from gui_recorder.errors import OcrError
from gui_recorder.text.engine import OcrLine, TesseractEngine, prepare
from gui_recorder.text.ocr import ScreenTextExtractor
from gui_recorder.text.regions import RegionTracker, grow_to_text, merge_rects


class BoardEngine:
    """Reads the 'text' painted on a board: each label is a solid block in its
    own grey level, so wherever the extractor puts it (cropped, stacked with
    other rows) the engine finds the label by its level and reports its box."""

    def __init__(self, board: "Board"):
        self.board = board
        self.images: list[tuple[int, int]] = []

    def read(self, image):
        gray = image if image.ndim == 2 else image[:, :, 0]
        self.images.append(gray.shape)
        out = []
        for level, text in self.board.names.items():
            ys, xs = np.nonzero(gray == level)
            if ys.size:
                out.append(OcrLine(text, int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                   int(ys.max() - ys.min() + 1), 90.0))
        return out


class Board:
    def __init__(self, width=400, height=200):
        self.frame = np.full((height, width, 3), 255, np.uint8)
        self.labels: dict[str, tuple[int, int, int, int]] = {}
        self.names: dict[int, str] = {}
        self._levels: dict[str, int] = {}

    def draw(self, text, x, y, w=60, h=12):
        level = self._levels.setdefault(text, 10 + 3 * len(self._levels))
        self.names[level] = text
        # Glyph-like strokes (every third column blank), not a solid block:
        # solid areas are not text to the row finder.
        self.frame[y:y + h, x:x + w] = level
        self.frame[y:y + h, x + 2:x + w:3] = 255
        self.labels[text] = (x, y, w, h)
        return (x, y, w, h)

    def erase(self, text):
        x, y, w, h = self.labels.pop(text)
        self.frame[y:y + h, x:x + w] = 255
        return (x, y, w, h)


def test_merge_rects_joins_neighbours_only():
    rects = [(0, 0, 10, 10), (15, 0, 10, 10), (200, 200, 5, 5)]
    assert sorted(merge_rects(rects, gap=8)) == [(0, 0, 25, 10), (200, 200, 5, 5)]
    assert len(merge_rects(rects, gap=2)) == 3


def test_grow_to_text_takes_the_whole_line():
    board = Board()
    board.draw("left", 20, 50, w=40)
    board.draw("right", 70, 50, w=40)  # 10 px gap: the same line
    board.draw("far", 300, 50, w=40)  # 190 px away: another column
    gray = board.frame[:, :, 0]
    x, y, w, h = grow_to_text(gray, (75, 52, 5, 4))  # a change inside "right"
    assert x <= 20 and x + w >= 110 and x + w < 300
    assert y <= 50 and y + h >= 62


def test_tracker_debounces_on_recording_time():
    tracker = RegionTracker(debounce_ms=1000)
    tracker.changed([(0, 0, 10, 10)], 0)
    tracker.changed([(5, 0, 10, 10)], 600)  # still changing: merged, clock restarts
    assert tracker.settled(1500) == []
    (region,) = tracker.settled(1600)
    assert region.rect == (0, 0, 15, 10) and (region.first_change_ms, region.last_change_ms) == (0, 600)


def feed(extractor, board, t, dirty):
    return extractor.feed_frame(t, board.frame, dirty)


def test_text_is_read_once_it_settles_with_the_time_it_appeared():
    board = Board()
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, debounce_ms=1000, batch_ms=0)
    assert feed(ex, board, 0, [board.draw("hello", 10, 10)]) == []
    assert feed(ex, board, 500, []) == []
    new = feed(ex, board, 1000, [])
    assert [(i.text, i.first_ms) for i in new] == [("hello", 0)]
    assert len(engine.images) == 1
    # Nothing changed: nothing more is read, however long the recording.
    for t in range(2000, 60000, 1000):
        assert feed(ex, board, t, []) == []
    assert len(engine.images) == 1
    ex.flush()
    assert ex.items[0].last_ms == 59000


def test_text_typed_over_several_frames_is_read_once_when_typing_stops():
    board = Board()
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, batch_ms=0)
    for i, t in enumerate(range(0, 3000, 200)):  # a character every 200 ms
        board.labels.pop(f"typing{i - 1}", None)
        feed(ex, board, t, [board.draw(f"typing{i}", 10, 10, w=10 + 8 * i)])
    assert engine.images == []
    new = feed(ex, board, 3800, [])
    assert [i.text for i in new] == ["typing14"] and new[0].first_ms == 2800


def test_text_shown_for_300_ms_and_replaced_is_read_from_its_last_look():
    board = Board()
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, batch_ms=0)
    feed(ex, board, 0, [board.draw("Delete all?", 10, 10)])
    feed(ex, board, 150, [])
    # Replaced after 400 ms on screen, long before it would settle (1 s): still read, with its times.
    erased = board.erase("Delete all?")
    new = feed(ex, board, 400, [erased, board.draw("Done", 10, 10, w=30)])
    assert [(i.text, i.first_ms, i.last_ms) for i in new] == [("Delete all?", 0, 400)]
    # What replaced it settles as usual; the flash is not on screen any more.
    later = feed(ex, board, 1500, [])
    assert [i.text for i in later] == ["Done"]
    ex.flush()
    assert ex.items[0].last_ms == 400


def test_text_shown_for_less_than_300_ms_is_not_read():
    board = Board()
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, batch_ms=0)
    feed(ex, board, 0, [board.draw("blink", 10, 10)])
    feed(ex, board, 250, [board.erase("blink")])
    feed(ex, board, 2000, [])
    ex.flush()
    assert ex.items == [] and engine.images == []


def test_same_text_in_the_same_place_is_not_stored_again():
    board = Board()
    ex = ScreenTextExtractor(BoardEngine(board), batch_ms=0)
    feed(ex, board, 0, [board.draw("status: ok", 10, 10)])
    feed(ex, board, 1000, [])
    # Something next to it changes: the grown region reads "status: ok" again.
    feed(ex, board, 5000, [board.draw("more", 80, 10, w=30)])
    new = feed(ex, board, 6000, [])
    assert [i.text for i in new] == ["more"]
    assert [i.text for i in ex.items] == ["status: ok", "more"]
    assert ex.items[0].last_ms == 6000 and ex.items[0].first_ms == 0


def test_text_that_leaves_keeps_the_time_it_was_last_seen():
    board = Board()
    ex = ScreenTextExtractor(BoardEngine(board), batch_ms=0)
    feed(ex, board, 0, [board.draw("bye", 10, 10)])
    feed(ex, board, 1000, [])
    feed(ex, board, 4000, [board.erase("bye")])
    feed(ex, board, 9000, [])
    ex.flush()
    assert (ex.items[0].first_ms, ex.items[0].last_ms) == (0, 4000)


def test_text_that_moved_is_not_new_but_the_same_words_later_elsewhere_are():
    board = Board()
    ex = ScreenTextExtractor(BoardEngine(board), batch_ms=0)
    feed(ex, board, 0, [board.draw("OK", 10, 10)])
    feed(ex, board, 1000, [])
    # Scrolled: gone from y=10, at y=40 a moment later.
    board.erase("OK")
    feed(ex, board, 2000, [(10, 10, 60, 12), board.draw("OK", 10, 40)])
    feed(ex, board, 3000, [])
    assert [(i.text, i.y, i.first_ms) for i in ex.items] == [("OK", 10, 0)]
    assert ex.items[0].last_ms == 3000
    # Much later, elsewhere: it appeared anew.
    board.erase("OK")
    feed(ex, board, 4000, [(10, 40, 60, 12)])
    feed(ex, board, 20000, [board.draw("OK", 10, 150)])
    feed(ex, board, 21000, [])
    assert [(i.text, i.y, i.first_ms) for i in ex.items] == [("OK", 10, 0), ("OK", 150, 20000)]


def test_rows_read_once_are_not_read_again_when_they_scroll():
    board = Board()
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, batch_ms=0)
    feed(ex, board, 0, [board.draw("line one", 10, 10), board.draw("line two", 10, 40)])
    feed(ex, board, 1000, [])
    assert len(engine.images) == 1
    # Scroll up by 30 px (a copy), a new line at the bottom.
    board.erase("line one")
    board.erase("line two")
    dirty = [board.draw("line two", 10, 10), (10, 40, 60, 12), board.draw("line three", 10, 70)]
    feed(ex, board, 1500, dirty)
    feed(ex, board, 2500, [])
    assert ex.stats.rows_reused >= 1
    assert engine.images[-1][0] < 40  # only the new row went to the engine
    assert [i.text for i in ex.items] == ["line one", "line two", "line three"]


def test_rows_are_read_in_batches_with_their_own_times():
    board = Board()
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, batch_ms=10_000)
    feed(ex, board, 0, [board.draw("first", 10, 10)])
    feed(ex, board, 1000, [])
    feed(ex, board, 3000, [board.draw("second", 10, 100)])
    feed(ex, board, 4000, [])
    assert engine.images == []
    feed(ex, board, 6000, [board.erase("first")])  # covered before it is read
    new = feed(ex, board, 11000, [])
    assert len(engine.images) == 1
    assert [(i.text, i.first_ms, i.last_ms) for i in new] == [("first", 0, 6000), ("second", 3000, 4000)]
    ex.flush()
    assert ex.items[1].last_ms == 11000  # still on screen at the end


def test_flush_reads_what_is_still_pending():
    board = Board()
    ex = ScreenTextExtractor(BoardEngine(board), batch_ms=0)
    feed(ex, board, 0, [board.draw("late", 10, 10)])
    assert [i.text for i in ex.flush()] == ["late"]


def test_advance_settles_regions_without_a_new_frame():
    board = Board()
    ex = ScreenTextExtractor(BoardEngine(board), batch_ms=0)
    feed(ex, board, 0, [board.draw("quiet", 10, 10)])
    assert [i.text for i in ex.advance(1200)] == ["quiet"]


def test_prepare_inverts_dark_backgrounds_and_scales():
    dark = np.zeros((10, 20, 3), np.uint8)
    dark[4:6, 4:16] = 230
    out = prepare(dark, 2.0)
    assert out.shape == (20 + 20, 40 + 20)
    assert np.median(out) > 200 and out.min() < 60  # dark ink on white now


def test_tesseract_failures_are_typed_errors(monkeypatch):
    # Real tesseract, real failure: a language that is not installed.
    engine = TesseractEngine(lang="zzz")
    with pytest.raises(OcrError, match=r"tesseract \(zzz\) failed"):
        engine.read(np.full((40, 120, 3), 255, np.uint8))
    monkeypatch.setenv("PATH", "/nonexistent")
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "tesseract-not-installed")
    with pytest.raises(OcrError, match="not installed"):
        TesseractEngine().read(np.full((40, 120, 3), 255, np.uint8))


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

_RECT = st.tuples(st.integers(-50, 450), st.integers(-50, 250), st.integers(-10, 600), st.integers(-10, 400))


@given(st.lists(st.tuples(st.integers(0, 5000), st.lists(_RECT, max_size=6), st.booleans()), max_size=25))
@hsettings(max_examples=60, deadline=None)
def test_any_frames_and_rects_never_crash(steps):
    board = Board()
    rng = np.random.default_rng(1)
    engine = BoardEngine(board)
    ex = ScreenTextExtractor(engine, batch_ms=2000)
    t = 0
    for dt, rects, scribble in steps:
        t += dt
        if scribble:
            board.frame[rng.integers(0, 200), :] = rng.integers(0, 255)
        ex.feed_frame(t, board.frame, rects)
    ex.flush()
    for item in ex.items:
        assert item.last_ms >= item.first_ms
