"""Typed text rebuilt from key instructions (keys.py)."""

from __future__ import annotations

import pytest

from gui_recorder.protocol import Instruction, encode, parse_all
from gui_recorder.text.keys import KeyDecoder, TypedLine, decode_keys, keysym_char
from support.keys import ALT, BACKSPACE, CAPS_LOCK as CAPS, CTRL, KP_ENTER, RETURN, SHIFT, SUPER, TAB


class Keys:
    """Builds a key stream the way guacd records it, one ms clock."""

    def __init__(self, start: int = 5_000_000):
        self.t = start
        self.out: list[Instruction] = [Instruction("sync", start)]

    def tick(self, ms: int) -> "Keys":
        self.t += ms
        return self

    def down(self, keysym: int) -> "Keys":
        self.t += 10
        self.out.append(Instruction("key", keysym, 1, self.t))
        return self

    def up(self, keysym: int) -> "Keys":
        self.t += 10
        self.out.append(Instruction("key", keysym, 0, self.t))
        return self

    def tap(self, keysym: int) -> "Keys":
        return self.down(keysym).up(keysym)

    def type(self, text: str) -> "Keys":
        for char in text:
            self.tap(ord(char) if ord(char) < 0x100 else 0x01000000 + ord(char))
        return self

    def chord(self, *keysyms: int) -> "Keys":
        for k in keysyms:
            self.down(k)
        for k in reversed(keysyms):
            self.up(k)
        return self


def texts(lines: list[TypedLine]) -> list[str]:
    return [line.text for line in lines]


def test_lines_end_at_return_and_keep_their_offsets():
    k = Keys().tick(1000).type("ls -la").tap(RETURN).tick(2000).type("exit").tap(KP_ENTER)
    lines = decode_keys(k.out)
    assert texts(lines) == ["ls -la", "exit"]
    # 1000 ms after the first timestamp, plus the 10 ms step of the first press.
    assert lines[0].start_ms == 1010
    assert lines[0].end_ms == 1010 + 12 * 10  # Return pressed after six taps (12 events)
    assert lines[1].start_ms > lines[0].end_ms + 2000


def test_backspace_edits_the_current_line():
    k = Keys().type("passwrd").tap(BACKSPACE).tap(BACKSPACE).tap(BACKSPACE).type("word").tap(RETURN)
    assert texts(decode_keys(k.out)) == ["password"]


def test_backspace_after_a_token_is_shown_not_guessed():
    k = Keys().type("ab").tap(0xFF51).tap(BACKSPACE).tap(RETURN)
    assert texts(decode_keys(k.out)) == ["ab<Left><BackSpace>"]


def test_chords_and_named_keys_are_readable_tokens():
    k = (Keys().chord(CTRL, ord("c")).chord(ALT, 0xFFC1).chord(SUPER, ord("r")).tap(0xFF09).tap(0xFF1B)
         .tap(0xFF52).tap(0xFFC2).chord(CTRL, SHIFT, ord("T")).chord(CTRL, RETURN))
    assert texts(decode_keys(k.out)) == ["<Ctrl+C><Alt+F4><Win+R><Tab><Esc><Up><F5><Ctrl+Shift+T><Ctrl+Enter>"]


def test_shift_on_named_keys_is_shown():
    k = Keys().down(SHIFT).tap(0xFE20).tap(0xFFFF).up(SHIFT).tap(0xFF09)
    assert texts(decode_keys(k.out)) == ["<Shift+Tab><Shift+Del><Tab>"]


def test_win_alone_opens_the_start_menu():
    assert texts(decode_keys(Keys().tap(SUPER).type("cmd").out)) == ["<Win>cmd"]


def test_browser_sends_shifted_keysyms_so_shift_adds_nothing():
    k = Keys().down(SHIFT).type("H").up(SHIFT).type("i").down(SHIFT).type("!").up(SHIFT)
    assert texts(decode_keys(k.out)) == ["Hi!"]


def test_unshifted_client_gets_shift_and_caps_lock_applied():
    k = (Keys().down(SHIFT).type("h").up(SHIFT).type("ello").down(SHIFT).type("1").up(SHIFT)
         .tap(CAPS).type("ab").down(SHIFT).type("c").up(SHIFT))
    assert texts(decode_keys(k.out)) == ["Hello!ABc"]


def test_browser_with_caps_lock_and_shift_stays_as_sent():
    # Caps Lock on, Shift held: a browser sends lowercase, and that is what appeared.
    k = Keys().tap(CAPS).type("AB").down(SHIFT).type("c").up(SHIFT)
    assert texts(decode_keys(k.out)) == ["ABc"]


@pytest.mark.parametrize("keysym,char", [
    (0x41, "A"), (0xE9, "é"), (0x010020AC, "€"), (0x01001F600, None), (0x0101F600, "😀"),
    (0xFFB7, "7"), (0xFFAB, "+"), (0xFFAE, "."), (0xFF0D, None), (0x01000000 + 0xD800, None),
])
def test_keysym_characters(keysym, char):
    assert keysym_char(keysym) == char


def test_unicode_and_keypad_typing():
    k = Keys().type("prix 5€ ").tap(0xFFB4).tap(0xFFAA).tap(0xFFB2).tap(KP_ENTER)
    assert texts(decode_keys(k.out)) == ["prix 5€ 4*2"]


def test_incremental_feed_gives_lines_as_they_finish_and_flush_gives_the_rest():
    k = Keys().type("one").tap(RETURN).type("two")
    decoder = KeyDecoder()
    got = []
    for instruction in k.out:
        got.append(texts(decoder.feed(instruction)))
    assert ["one"] in got and ["two"] not in got
    assert texts(decoder.flush()) == ["two"]
    assert decoder.flush() == []


def test_malformed_key_instructions_are_counted_and_skipped():
    decoder = KeyDecoder()
    stream = [Instruction("sync", 1), Instruction("key", "x", 1, 2), Instruction("key"),
              Instruction("key", 0x61, 1, 3), Instruction("key", 0x61, 0, 4)]
    lines = decoder.feed_all(stream) + decoder.flush()
    assert texts(lines) == ["a"] and decoder.skipped == 2


def test_from_wire_text_as_guacd_records_it():
    wire = "".join(encode(i) for i in Keys().type("df -h").tap(RETURN).out).encode()
    assert texts(decode_keys(parse_all(wire))) == ["df -h"]


def test_long_lines_are_cut():
    from gui_recorder.text import keys

    k = Keys().type("x" * (keys.MAX_LINE_ITEMS + 5))
    lines = decode_keys(k.out)
    assert [len(line.text) for line in lines] == [keys.MAX_LINE_ITEMS, 5]


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

_KEYSYM = st.one_of(st.integers(0, 0x1FFFFFFF), st.sampled_from([RETURN, BACKSPACE, SHIFT, CTRL, CAPS, SUPER, TAB]),
                    st.integers(0x20, 0x7E))


@given(st.lists(st.tuples(st.one_of(_KEYSYM.map(str), st.text(max_size=5)), st.sampled_from(["0", "1", "x", ""]),
                          st.integers(-5, 10**7).map(str)), max_size=80))
@hsettings(max_examples=200, deadline=None)
def test_any_key_stream_decodes_without_crashing(events):
    stream = [Instruction("key", *e) for e in events]
    lines = decode_keys(stream)
    for line in lines:
        assert line.text and line.end_ms >= line.start_ms >= 0
