"""The tee hook: what the relay sees, written in guacd's session-recording format.

Server-to-client instructions are written exactly as relayed. The user's input
is written as guacd writes it (``key,keysym,pressed,ts`` and
``mouse,x,y,mask,ts``), stamped in guacd's own clock: the last ``sync``
timestamp plus the time elapsed since it arrived. Every other client
instruction (size, clipboard, file streams, sync echoes...) is kept as
``gr-client,ts,<its wire text>``: an opcode Guacamole's player ignores, so the
recording still plays there and nothing the user sent is lost.
"""

from __future__ import annotations

import time

from gui_recorder.protocol import Instruction, encode
from gui_recorder.recording.spool import SpoolSession

CLIENT_OPCODE = "gr-client"


class SessionRecorder:
    def __init__(self, spool: SpoolSession, clock=time.monotonic, wall=time.time, on_sealed=None):
        self.spool = spool
        self._on_sealed = on_sealed
        self._clock = clock
        self._wall = wall
        self._sync_ts: int | None = None  # guacd timestamp of the last sync
        self._sync_at = 0.0  # our monotonic time when it arrived
        self.first_ts: int | None = None
        self.wall_start_ms: int | None = None
        self._pending: list[Instruction] = []  # input before guacd's first sync
        self.finished = False

    def now_ts(self) -> int:
        """The current time in guacd's clock (ms)."""
        if self._sync_ts is None:
            return 0
        return self._sync_ts + int((self._clock() - self._sync_at) * 1000)

    def server(self, instructions: list[Instruction], wire: str) -> None:
        """Tee what guacd sent: ``wire`` is the exact text of ``instructions``."""
        for ins in instructions:
            if ins[0] == "sync" and len(ins) > 1:
                try:
                    ts = int(ins[1])
                except ValueError:
                    continue
                self._sync_ts, self._sync_at = ts, self._clock()
                if self.first_ts is None:
                    self.first_ts = ts
                    self.wall_start_ms = int(self._wall() * 1000)
        self.spool.write(wire.encode())
        if self._pending and self._sync_ts is not None:
            pending, self._pending = self._pending, []
            for ins in pending:
                self.client(ins)
        self.tick()

    def client(self, instruction: Instruction) -> None:
        if self._sync_ts is None:
            self._pending.append(instruction)
            return
        ts = str(self.now_ts())
        opcode = instruction[0]
        if opcode == "key" and len(instruction) == 3:
            wire = encode(("key", instruction[1], instruction[2], ts))
        elif opcode == "mouse" and len(instruction) == 4:
            wire = encode(("mouse", instruction[1], instruction[2], instruction[3], ts))
        else:
            wire = encode((CLIENT_OPCODE, ts, encode(instruction)))
        self.spool.write(wire.encode())

    def tick(self) -> None:
        """Seal the open segment if it is old enough (called periodically by the relay)."""
        if self.spool.due():
            self.spool.seal()
            if self._on_sealed:
                self._on_sealed()

    def finish(self, end_reason: str) -> None:
        """A final sync so players show the last frame, then seal and mark finished."""
        if self.finished:
            return
        self.finished = True
        if self._sync_ts is not None:
            self.spool.write(encode(("sync", str(self.now_ts()))).encode())
        duration = self.now_ts() - self.first_ts if self.first_ts is not None else 0
        self.spool.finish(first_ts=self.first_ts, wall_start_ms=self.wall_start_ms, duration_ms=duration,
                          end_reason=end_reason)
        if self._on_sealed:
            self._on_sealed()
