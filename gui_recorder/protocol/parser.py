"""Incremental Guacamole protocol parser.

Fed arbitrary chunks of bytes (split anywhere, even inside a multi-byte UTF-8
character), it returns each complete instruction once. Element lengths count
Unicode code points, so the bytes are decoded incrementally first.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol.instruction import Instruction

_MAX_LENGTH_DIGITS = 9


@dataclass(frozen=True)
class Limits:
    """Bounds on what a peer may send.

    guacd itself allows 8192 characters per element, 128 elements and a 32 KiB
    instruction buffer (parser-constants.h); our defaults are looser so that
    recordings from newer guacd versions still parse, yet bounded.
    """

    max_element_length: int = 65536
    max_elements: int = 256
    max_instruction_length: int = 131072


class Parser:
    """Turn a byte stream into instructions.

    ``feed`` returns the instructions completed by a chunk; ``offset`` is the
    number of code points consumed so far. After a ``ProtocolError`` the parser
    is poisoned: the stream has no resynchronisation point.
    """

    def __init__(self, limits: Limits = Limits(), keep_wire: bool = False):
        self.limits = limits
        # With ``keep_wire``, ``wire`` is the exact text of the instructions the
        # last feed completed, so a relay can forward and tee what it received
        # without re-encoding it.
        self.keep_wire = keep_wire
        self.wire = ""
        self._partial_wire = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._buf = ""  # undecoded-to-elements text, starting at an element boundary
        self._elements: list[str] = []  # elements of the instruction in progress
        self._instruction_length = 0
        self._base = 0  # stream offset of self._buf[0]
        self._error: ProtocolError | None = None

    @property
    def offset(self) -> int:
        return self._base

    @property
    def pending(self) -> bool:
        """True when part of an instruction has been fed but not completed."""
        return bool(self._buf or self._elements)

    def feed(self, data: bytes) -> list[Instruction]:
        if self._error is not None:
            raise self._error
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            self._fail(f"invalid UTF-8 ({exc.reason})", self._base + len(self._buf))
        return self.feed_text(text)

    def feed_text(self, text: str) -> list[Instruction]:
        if self._error is not None:
            raise self._error
        buf = self._buf + text if self._buf else text
        out: list[Instruction] = []
        limits = self.limits
        elements = self._elements
        pos = 0
        last_end = -1
        end = len(buf)
        while pos < end:
            dot = buf.find(".", pos, pos + _MAX_LENGTH_DIGITS + 1)
            if dot < 0:
                if end - pos > _MAX_LENGTH_DIGITS:
                    self._fail("element length has too many digits or no '.'", self._base + pos)
                if not buf[pos:end].isdigit():
                    self._fail("element length is not a decimal number", self._base + pos)
                break
            digits = buf[pos:dot]
            if not digits.isdigit() or not digits.isascii():
                self._fail(f"element length {digits[:12]!r} is not a decimal number", self._base + pos)
            length = int(digits)
            if length > limits.max_element_length:
                self._fail(
                    f"element of {length} characters exceeds the limit of {limits.max_element_length}",
                    self._base + pos,
                )
            stop = dot + 1 + length
            if stop >= end:
                # Fail early on an instruction that can only grow past the limit.
                if self._instruction_length + (stop - pos) > limits.max_instruction_length:
                    self._fail(
                        f"instruction exceeds the limit of {limits.max_instruction_length} characters",
                        self._base + pos,
                    )
                break
            terminator = buf[stop]
            if terminator != "," and terminator != ";":
                self._fail(f"expected ',' or ';' after element, found {terminator!r}", self._base + stop)
            elements.append(buf[dot + 1 : stop])
            self._instruction_length += stop + 1 - pos
            if len(elements) > limits.max_elements:
                self._fail(f"instruction has more than {limits.max_elements} elements", self._base + pos)
            if self._instruction_length > limits.max_instruction_length:
                self._fail(
                    f"instruction exceeds the limit of {limits.max_instruction_length} characters",
                    self._base + pos,
                )
            pos = stop + 1
            if terminator == ";":
                out.append(tuple.__new__(Instruction, elements))
                elements = self._elements = []
                self._instruction_length = 0
                last_end = pos
        if self.keep_wire:
            if last_end >= 0:
                self.wire = self._partial_wire + buf[:last_end]
                self._partial_wire = buf[last_end:pos]
            else:
                self.wire = ""
                self._partial_wire += buf[:pos]
        self._buf = buf[pos:]
        self._base += pos
        return out

    def close(self) -> None:
        """Declare the end of the stream; raise if it ends inside an instruction."""
        if self._error is not None:
            raise self._error
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            self._fail(f"stream ends inside a UTF-8 character ({exc.reason})", self._base + len(self._buf))
        if self.pending:
            self._fail("stream ends inside an instruction", self._base)

    def _fail(self, message: str, offset: int) -> None:
        self._error = ProtocolError(message, offset)
        raise self._error


def parse_all(data: bytes, limits: Limits = Limits()) -> list[Instruction]:
    """Parse a complete stream (e.g. a recording) into instructions."""
    parser = Parser(limits)
    out = parser.feed(data)
    parser.close()
    return out
