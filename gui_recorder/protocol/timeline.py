"""Recording time: every offset in gui-recorder is ms since the recording's first timestamp.

guacd stamps ``sync`` (server frames), ``mouse`` and ``key`` (client input) with
CLOCK_MONOTONIC milliseconds of the guacd host; only differences mean anything,
so the first timestamp seen becomes offset 0 (GUACAMOLE-PROTOCOL.md, Recordings).
"""

from __future__ import annotations

from gui_recorder.protocol import Instruction

# Where the timestamp sits in each instruction that carries one.
_TIMESTAMP_INDEX = {"sync": 1, "mouse": 4, "key": 3}


def instruction_timestamp(instruction: Instruction) -> int | None:
    """The raw timestamp of ``instruction``, or None if it has none (or a bad one)."""
    index = _TIMESTAMP_INDEX.get(instruction[0])
    if index is None or len(instruction) <= index:
        return None
    try:
        return int(instruction[index])
    except ValueError:
        return None


class Origin:
    """Turns raw timestamps into offsets from the first one seen.

    Shared by the key decoder and the OCR pipeline of one recording so both
    measure from the same zero.
    """

    def __init__(self, first_timestamp: int | None = None):
        self.first = first_timestamp
        self.last_offset = 0

    def observe(self, instruction: Instruction) -> int | None:
        """Note ``instruction``'s timestamp; return its offset (None if it has none)."""
        ts = instruction_timestamp(instruction)
        if ts is None:
            return None
        if self.first is None:
            self.first = ts
        offset = max(0, ts - self.first)
        # A timestamp going backwards (bad data) must not move time backwards.
        if offset > self.last_offset:
            self.last_offset = offset
        return offset
