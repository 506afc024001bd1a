"""Printed text: the lines an SSH session's terminal showed, from its typescript (no OCR).

The recording carries what the server printed as ``gr-typescript,<ts>,<text>``
(recording/typescript.py): bytes for a VT100/xterm, with escape sequences,
carriage returns and backspaces. ``TerminalDecoder`` keeps one line with a
cursor, as a terminal would: printable characters overwrite at the cursor,
CR goes back to column 0, BS and CSI C/D move, CSI K/P/@/X erase, delete and
insert; a line feed (or a cursor move to another row, which full-screen
programs use) ends the line. Every other sequence (colours, modes, titles)
is dropped. What was printed is kept whole: recall is 100 % of the printed
words by construction, the typescript being guacd's copy of the stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gui_recorder.protocol import Instruction
from gui_recorder.protocol.timeline import Origin

OPCODE = "gr-typescript"
MAX_LINE = 4096
FOOTER = "[END TYPESCRIPT]"  # guacd's, written when the terminal closes  # a line longer than this is ended anyway (limits on input)

# CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes, C1 CSI.
_SEQUENCE = re.compile(r"\x1b\[([0-?]*)([ -/]*)([@-~])|\x9b([0-?]*)([ -/]*)([@-~])"
                       r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[()*+#%].|\x1b[@-Z\\-_=>78]")
_INCOMPLETE = re.compile(r"(\x1b(\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[()*+#%])?|\x9b[0-?]*[ -/]*)$")


@dataclass(frozen=True)
class PrintedLine:
    """One line the terminal printed; offsets are ms from the recording's first timestamp."""

    text: str
    start_ms: int
    end_ms: int


def _count(params: str, default: int = 1) -> int:
    first = params.split(";")[0]
    return int(first) if first.isdigit() and int(first) > 0 else default


class TerminalDecoder:
    def __init__(self, origin: Origin | None = None):
        self.origin = origin or Origin()
        self._line: list[str] = []
        self._cursor = 0
        self._start: int | None = None
        self._now = 0
        self._rest = ""  # an escape sequence cut by the end of a chunk

    def feed(self, instruction: Instruction) -> list[PrintedLine]:
        self.origin.observe(instruction)
        if instruction[0] != OPCODE or len(instruction) < 3:
            return []
        try:
            ts = int(instruction[1])
        except ValueError:
            return []
        if self.origin.first is None:
            self.origin.first = ts
        self._now = max(0, ts - self.origin.first)
        return self.write(instruction[2])

    def write(self, data: str) -> list[PrintedLine]:
        data, self._rest = self._rest + data, ""
        cut = _INCOMPLETE.search(data)
        if cut and cut.group(0):
            data, self._rest = data[:cut.start()], data[cut.start():]
        out: list[PrintedLine] = []
        pos = 0
        for match in _SEQUENCE.finditer(data):
            self._text(data[pos:match.start()], out)
            self._sequence(match, out)
            pos = match.end()
        self._text(data[pos:], out)
        return out

    def flush(self) -> list[PrintedLine]:
        out: list[PrintedLine] = []
        self._end(out)
        return out

    # -- the line and its cursor ----------------------------------------------

    def _text(self, text: str, out: list[PrintedLine]) -> None:
        for ch in text:
            if ch == "\n":
                self._end(out)
            elif ch == "\r":
                self._cursor = 0
            elif ch == "\b":
                self._cursor = max(0, self._cursor - 1)
            elif ch == "\t":
                self._put(" ", out)
                while self._cursor % 8:
                    self._put(" ", out)
            elif ch >= " " and ch != "\x7f" and not "\x80" <= ch <= "\x9f":
                self._put(ch, out)

    def _put(self, ch: str, out: list[PrintedLine]) -> None:
        if self._start is None:
            self._start = self._now
        if self._cursor < len(self._line):
            self._line[self._cursor] = ch
        else:
            self._line.extend(" " * (self._cursor - len(self._line)))
            self._line.append(ch)
        self._cursor += 1
        if len(self._line) >= MAX_LINE:
            self._end(out)

    def _sequence(self, match: re.Match, out: list[PrintedLine]) -> None:
        final = match.group(3) or match.group(6)
        if not final:
            return  # OSC, DCS, charset, keypad modes...: nothing printed
        params = match.group(1) if match.group(3) else match.group(4)
        if params.startswith("?"):
            return  # private modes (bracketed paste, cursor visibility)
        n = _count(params)
        if final == "C":
            self._cursor += n
        elif final == "D":
            self._cursor = max(0, self._cursor - n)
        elif final == "G":
            self._cursor = n - 1
        elif final == "K":
            mode = _count(params, 0)
            if mode == 0:
                del self._line[self._cursor:]
            elif mode == 1:
                self._line[:self._cursor] = " " * min(self._cursor, len(self._line))
            else:
                self._line = []
        elif final == "P":
            del self._line[self._cursor:self._cursor + n]
        elif final == "@":
            self._line[self._cursor:self._cursor] = " " * n if self._cursor <= len(self._line) else []
        elif final == "X":
            end = min(len(self._line), self._cursor + n)
            self._line[self._cursor:end] = " " * (end - self._cursor)
        elif final in "HfABdJ":
            # Another row (or a cleared screen): what was on this one is a line of its own.
            self._end(out)

    def _end(self, out: list[PrintedLine]) -> None:
        text = "".join(self._line).rstrip()
        if text.strip() and text != FOOTER:
            out.append(PrintedLine(text, self._start if self._start is not None else self._now, self._now))
        self._line, self._cursor, self._start = [], 0, None
