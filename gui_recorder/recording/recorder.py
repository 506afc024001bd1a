"""The tee hook: what the relay sees, written in guacd's session-recording format.

Server-to-client instructions are written exactly as relayed. The user's input
is written as guacd writes it (``key,keysym,pressed,ts`` and
``mouse,x,y,mask,ts``), stamped in guacd's own clock: the last ``sync``
timestamp plus the time elapsed since it arrived. Every other client
instruction (size, clipboard, file streams, sync echoes...) is kept as
``gr-client,ts,<its wire text>``: an opcode Guacamole's player ignores, so the
recording still plays there and nothing the user sent is lost.

Each call writes one batch straight to the OS (``SpoolSession.write``), so
the relay forwards a batch only after the recorder has accepted it. Nothing
here fsyncs: ``tick`` rotates an old segment and ``seal_pending`` / ``finish``
(blocking) are run by the relay in a thread.
"""

from __future__ import annotations

import time

from gui_recorder.protocol import Instruction, encode
from gui_recorder.recording.spool import SpoolSession

CLIENT_OPCODE = "gr-client"
# An SSH session's printed output (recording/typescript.py): ``gr-typescript,<ts>,<text>``.
TERMINAL_OPCODE = "gr-typescript"


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
        # Input before guacd's first sync has no timestamp yet: written with that sync, and only then
        # forwarded by the relay (nothing reaches guacd that is not on disk).
        self._pending: list[Instruction] = []
        self.finished = False
        self._terminal = None  # a TypescriptTail for SSH sessions

    def attach_terminal(self, source) -> None:
        """Record what ``source.read()`` returns (a terminal's output) with each batch guacd sends."""
        self._terminal = source

    def _terminal_wire(self) -> str:
        if self._terminal is None or self._sync_ts is None:
            return ""
        text = self._terminal.read()
        return encode((TERMINAL_OPCODE, str(self.now_ts()), text)) if text else ""

    def now_ts(self) -> int:
        """The current time in guacd's clock (ms)."""
        if self._sync_ts is None:
            return 0
        return self._sync_ts + int((self._clock() - self._sync_at) * 1000)

    def server(self, instructions: list[Instruction], wire: str) -> None:
        """Tee what guacd sent: ``wire`` is the exact text of ``instructions``. One write."""
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
        # guacd writes the typescript before it flushes the frame showing it: read it with that frame.
        data = wire + self._terminal_wire()
        if self._pending and self._sync_ts is not None:
            pending, self._pending = self._pending, []
            data += self._client_wire(pending)
        self.spool.write(data.encode())
        self.tick()

    def _client_wire(self, instructions: list[Instruction]) -> str:
        ts = str(self.now_ts())
        out = []
        for instruction in instructions:
            opcode = instruction[0]
            if opcode == "key" and len(instruction) == 3:
                out.append(encode(("key", instruction[1], instruction[2], ts)))
            elif opcode == "mouse" and len(instruction) == 4:
                out.append(encode(("mouse", instruction[1], instruction[2], instruction[3], ts)))
            else:
                out.append(encode((CLIENT_OPCODE, ts, encode(instruction))))
        return "".join(out)

    @property
    def has_clock(self) -> bool:
        """Whether guacd's clock is known (its first ``sync`` arrived): only then is input written at once."""
        return self._sync_ts is not None

    def client_batch(self, instructions: list[Instruction]) -> bool:
        """Tee one batch of the user's input in one write; raises RecordingError if it cannot be written.

        Returns False when the batch was only held (no ``sync`` from guacd yet, so no timestamp): it is
        written with the next server batch, and the relay must not forward it before then.
        """
        if self.spool.failure is not None:
            raise self.spool.failure
        if not instructions:
            return True
        if self._sync_ts is None:
            self._pending.extend(instructions)
            return False
        self.spool.write(self._client_wire(instructions).encode())
        return True

    def client(self, instruction: Instruction) -> None:
        self.client_batch([instruction])

    def tick(self) -> bool:
        """Rotate the open segment if it is old enough; True when segments wait for ``seal_pending``."""
        if self.spool.due():
            self.spool.rotate()
        return bool(self.spool.unsealed)

    def seal_pending(self) -> None:
        """Make rotated segments durable. Blocking (fsync): the relay runs it in a thread."""
        if self.spool.seal_pending() and self._on_sealed:
            self._on_sealed()

    def finish(self, end_reason: str) -> None:
        """A final sync so players show the last frame, then seal and mark finished. Blocking."""
        if self.finished:
            return
        self.finished = True
        if self._pending:
            self.spool.write(self._client_wire(self._pending).encode())
            self._pending = []
        if self._sync_ts is not None:
            self.spool.write((self._terminal_wire() + encode(("sync", str(self.now_ts())))).encode())
        duration = self.now_ts() - self.first_ts if self.first_ts is not None else 0
        self.spool.finish(first_ts=self.first_ts, wall_start_ms=self.wall_start_ms, duration_ms=duration,
                          end_reason=end_reason)
        if self._on_sealed:
            self._on_sealed()
