"""Keysyms by name, and key presses as the wire text a Guacamole client sends.

Typing maps characters to keysyms with the product's ``keystroke`` (the one
mapping); what is here is only what scripted clients need beyond it: named keys,
BackSpace written as ``\\b`` in a script, and the plain reading of a recording's
presses that the browser tests compare with what was typed (independent of the
text stage's decoder, which is what test_text_keys.py tests).
"""

from __future__ import annotations

from gui_recorder.protocol import encode
from gui_recorder.text import keys as product_keys

# X11 keysyms (keysymdef.h), as browsers send them.
BACKSPACE, TAB, RETURN, ESCAPE = 0xFF08, 0xFF09, 0xFF0D, 0xFF1B
KP_ENTER = 0xFF8D
SHIFT, CTRL, CAPS_LOCK, ALT, SUPER = 0xFFE1, 0xFFE3, 0xFFE5, 0xFFE9, 0xFFEB


def tap(keysym: int) -> str:
    """Wire text of pressing and releasing one key."""
    return encode(("key", str(keysym), "1")) + encode(("key", str(keysym), "0"))


def keystroke(ch: str) -> str:
    """Wire text that types ``ch``: newline is Return, ``\\b`` is BackSpace."""
    return tap(BACKSPACE) if ch == "\b" else product_keys.keystroke(ch)


def pressed_text(instructions) -> str:
    """Printable ASCII of the recorded key presses, in order (Return as a newline)."""
    out = []
    for ins in instructions:
        if ins[0] == "key" and len(ins) == 4 and ins[2] == "1":
            keysym = int(ins[1])
            if 0x20 <= keysym <= 0x7E:
                out.append(chr(keysym))
            elif keysym == RETURN:
                out.append("\n")
    return "".join(out)
