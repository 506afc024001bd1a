"""Typed text: rebuild what the user typed from the ``key`` instructions of a recording.

guacd writes ``key,<keysym>,<1|0>,<ts>`` for each press/release when the
connection has ``recording-include-keys=true``. We turn them into lines:

- keysyms 0x20-0xFF are Latin-1, ``0x0100xxxx`` is Unicode U+xxxx, keypad keys
  give their character (GUACAMOLE-PROTOCOL.md, "Key text");
- BackSpace edits the current line, Return/KP_Enter ends it;
- other keys and chords become readable tokens: ``<Tab>``, ``<Esc>``, ``<Up>``,
  ``<F5>``, ``<Ctrl+C>``, ``<Alt+F4>``, ``<Win+R>``, ``<Ctrl+Shift+T>``.

Shift: the browser already sends shifted keysyms ('A' is 0x41 with Shift held;
with Caps Lock on and Shift held it sends 'a'). Other clients may send the
unshifted keysym. ``shifted_keysyms=None`` (the default) assumes the browser's
behaviour until the stream proves otherwise: a lowercase letter arriving with
Shift held and Caps Lock off cannot come from a browser, so from then on the
decoder applies Shift and Caps Lock itself (US layout for non-letters).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gui_recorder.protocol import Instruction, encode
from gui_recorder.protocol.timeline import Origin

log = logging.getLogger(__name__)

# A line longer than this is ended anyway: a stuck key or a paste of a whole
# file must not grow one document without bound (limits on external input).
MAX_LINE_ITEMS = 4096

RETURN_KEYS = {0xFF0D, 0xFF8D}  # Return, KP_Enter
BACKSPACE = 0xFF08
CAPS_LOCK = 0xFFE5
SHIFT_KEYS = {0xFFE1, 0xFFE2}

# Modifiers that make a chord, by keysym, with the name shown in tokens.
CHORD_MODIFIERS = {
    0xFFE3: "Ctrl", 0xFFE4: "Ctrl",
    0xFFE9: "Alt", 0xFFEA: "Alt",
    0xFFE7: "Win", 0xFFE8: "Win",  # Meta_L/R: what browsers on some systems send for the Windows key
    0xFFEB: "Win", 0xFFEC: "Win",  # Super_L/R
    0xFFED: "Win", 0xFFEE: "Win",  # Hyper_L/R
}
CHORD_ORDER = ("Ctrl", "Alt", "Win", "Shift")

# Keys that only change state and print nothing on their own.
SILENT_KEYS = {
    *SHIFT_KEYS, CAPS_LOCK, 0xFFE6,  # Shift_Lock
    0xFF7F,  # Num_Lock
    0xFF14,  # Scroll_Lock
    0xFE03, 0xFF7E,  # ISO_Level3_Shift (AltGr), Mode_switch: their result arrives as a keysym
}

KEYPAD_CHARS = {
    0xFF80: " ", 0xFFAA: "*", 0xFFAB: "+", 0xFFAC: ",", 0xFFAD: "-", 0xFFAE: ".",
    0xFFAF: "/", 0xFFBD: "=", **{0xFFB0 + d: str(d) for d in range(10)},
}

NAMED_KEYS = {
    0xFF09: "Tab", 0xFF89: "Tab", 0xFE20: "Tab",  # Tab, KP_Tab, ISO_Left_Tab (Shift+Tab)
    0xFF1B: "Esc", 0xFFFF: "Del", 0xFF9F: "Del",
    0xFF50: "Home", 0xFF95: "Home", 0xFF57: "End", 0xFF9C: "End",
    0xFF51: "Left", 0xFF96: "Left", 0xFF52: "Up", 0xFF97: "Up",
    0xFF53: "Right", 0xFF98: "Right", 0xFF54: "Down", 0xFF99: "Down",
    0xFF55: "PgUp", 0xFF9A: "PgUp", 0xFF56: "PgDn", 0xFF9B: "PgDn",
    0xFF63: "Ins", 0xFF9E: "Ins", 0xFF61: "PrtSc", 0xFF13: "Pause", 0xFF6B: "Break",
    0xFF67: "Menu", 0xFF6A: "Help",
    **{0xFFBE + n: f"F{n + 1}" for n in range(24)},  # F1-F24
}

# US layout Shift for clients that send unshifted keysyms.
US_SHIFTED = dict(zip("`1234567890-=[]\\;',./", "~!@#$%^&*()_+{}|:\"<>?"))


@dataclass(frozen=True)
class TypedLine:
    """One line the user typed: offsets are ms from the recording's first timestamp."""

    text: str
    start_ms: int  # the first key of the line
    end_ms: int  # the key that ended it (Return), or the last key at a flush


def keysym_char(keysym: int) -> str | None:
    """The character a keysym types by itself (no modifiers), or None."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if 0x01000000 <= keysym <= 0x0110FFFF:
        code = keysym - 0x01000000
        if code >= 0x20 and not 0xD800 <= code <= 0xDFFF and code != 0x7F:
            return chr(code)
        return None
    return KEYPAD_CHARS.get(keysym)


def keystroke(ch: str) -> str:
    """Wire text of pressing and releasing the key that types ``ch`` (newline: Return).

    The inverse of ``keysym_char``, for scripted clients (tests, benchmarks)
    that type through the real protocol.
    """
    code = ord(ch)
    if ch == "\n":
        keysym = 0xFF0D
    elif 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        keysym = code
    else:
        keysym = 0x01000000 | code
    return encode(("key", str(keysym), "1")) + encode(("key", str(keysym), "0"))


def keysym_label(keysym: int) -> str:
    """A short readable name for any keysym, for tokens such as ``<Ctrl+C>``."""
    char = keysym_char(keysym)
    if char is not None:
        return {" ": "Space", "<": "Less", ">": "Greater", "+": "Plus"}.get(char, char.upper())
    if keysym in RETURN_KEYS:
        return "Enter"
    if keysym == BACKSPACE:
        return "BackSpace"
    return NAMED_KEYS.get(keysym, f"0x{keysym:X}")


class KeyDecoder:
    """Incremental: ``feed`` instructions as they arrive, get the lines they finish.

    Feed every instruction of the recording (not only ``key``): the first
    timestamp of any kind is offset 0. Call ``flush`` at the end for the line
    still being typed. ``skipped`` counts malformed key instructions.
    """

    def __init__(self, origin: Origin | None = None, shifted_keysyms: bool | None = None):
        self.origin = origin or Origin()
        self.shifted_keysyms = shifted_keysyms
        self.skipped = 0
        self._items: list[str] = []  # characters and tokens of the current line
        self._start_ms: int | None = None
        self._last_ms = 0
        self._held: set[int] = set()
        self._caps = False
        self._lone_modifier: int | None = None  # a Win key pressed with nothing else yet

    def feed(self, instruction: Instruction) -> list[TypedLine]:
        # Observing twice (when the origin is shared) is harmless: the first
        # timestamp is only set once.
        offset = self.origin.observe(instruction)
        if instruction[0] != "key":
            return []
        try:
            keysym, pressed = int(instruction[1]), instruction[2] == "1"
        except (IndexError, ValueError):
            self.skipped += 1
            log.debug("skipping malformed key instruction %r", instruction)
            return []
        offset = self._last_ms if offset is None else offset
        self._last_ms = max(self._last_ms, offset)
        if pressed:
            return self._press(keysym, offset)
        self._release(keysym, offset)
        return []

    def feed_all(self, instructions) -> list[TypedLine]:
        lines: list[TypedLine] = []
        for instruction in instructions:
            lines.extend(self.feed(instruction))
        return lines

    @property
    def current_line(self) -> str:
        """The line being typed so far: the guardrails check it before its Enter is forwarded (issue 14)."""
        return "".join(self._items)

    def submits(self, keysym: int) -> bool:
        """Whether pressing ``keysym`` now ends the line (Return or KP_Enter, no chord held)."""
        return keysym in RETURN_KEYS and not self._chord()

    def flush(self) -> list[TypedLine]:
        """End the line in progress (at the end of a recording)."""
        return self._end_line(self._last_ms)

    # -- state machine ------------------------------------------------------

    def _press(self, keysym: int, offset: int) -> list[TypedLine]:
        self._held.add(keysym)
        if keysym == CAPS_LOCK:
            self._caps = not self._caps
        if keysym in CHORD_MODIFIERS:
            self._lone_modifier = keysym if CHORD_MODIFIERS[keysym] == "Win" else None
            return []
        self._lone_modifier = None
        if keysym in SILENT_KEYS:
            return []
        chord = self._chord()
        if keysym in RETURN_KEYS and not chord:
            return self._end_line(offset)
        if chord:
            if self._shift_held() and "Shift" not in chord:
                chord.append("Shift")
            label = keysym_label(keysym)
            self._append("<" + "+".join(sorted(chord, key=CHORD_ORDER.index) + [label]) + ">", offset)
            return self._overflow(offset)
        if keysym == BACKSPACE:
            if self._items and len(self._items[-1]) == 1:
                self._items.pop()
            elif self._items:
                # After a token (an arrow, a chord) we no longer know where the
                # cursor is: show the key rather than guess what it deleted.
                self._append("<BackSpace>", offset)
            return []
        char = keysym_char(keysym)
        if char is not None:
            self._append(self._apply_shift(char), offset)
        else:
            # Shift matters on named keys (Shift+Tab goes back, Shift+Del cuts).
            shift = "Shift+" if self._shift_held() else ""
            self._append(f"<{shift}{keysym_label(keysym)}>", offset)
        return self._overflow(offset)

    def _release(self, keysym: int, offset: int) -> None:
        self._held.discard(keysym)
        if keysym == self._lone_modifier:
            # Win pressed and released alone opens the Start menu: worth showing.
            self._append("<Win>", offset)
            self._lone_modifier = None

    def _chord(self) -> list[str]:
        return sorted({CHORD_MODIFIERS[k] for k in self._held if k in CHORD_MODIFIERS},
                      key=CHORD_ORDER.index)

    def _shift_held(self) -> bool:
        return bool(self._held & SHIFT_KEYS)

    def _apply_shift(self, char: str) -> str:
        shift = self._shift_held()
        if self.shifted_keysyms is None and shift and not self._caps and char.isalpha() and char.islower():
            # Only a client that does not apply Shift itself sends this.
            self.shifted_keysyms = False
        if self.shifted_keysyms is not False:
            return char
        if char.isalpha():
            upper = shift != self._caps
            return char.upper() if upper else char.lower()
        return US_SHIFTED.get(char, char) if shift else char

    def _append(self, item: str, offset: int) -> None:
        if self._start_ms is None:
            self._start_ms = offset
        self._items.append(item)

    def _overflow(self, offset: int) -> list[TypedLine]:
        return self._end_line(offset) if len(self._items) >= MAX_LINE_ITEMS else []

    def _end_line(self, offset: int) -> list[TypedLine]:
        items, start = self._items, self._start_ms
        self._items, self._start_ms = [], None
        if not items or start is None:
            return []
        return [TypedLine("".join(items), start, max(start, offset))]


def decode_keys(instructions, shifted_keysyms: bool | None = None) -> list[TypedLine]:
    """Every line typed in ``instructions`` (a whole recording), flushed at the end."""
    decoder = KeyDecoder(shifted_keysyms=shifted_keysyms)
    lines = decoder.feed_all(instructions)
    return lines + decoder.flush()
