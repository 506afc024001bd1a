"""What a browser may send to guacd once the handshake is done.

A display client sends input, size changes, frame acknowledgements and, when
the connection's policy allows, clipboard and file streams. Anything else, a
second ``select`` or ``connect``, ``argv`` (which would rewrite connection
parameters such as the recording path), a stream it never opened, an unknown
opcode, is a violation: the relay ends the session and logs a security event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from gui_recorder.protocol import Instruction


class Verdict(Enum):
    FORWARD = "forward"
    REFUSE = "refuse"  # not allowed by policy: answered with an `ack` error, session goes on
    VIOLATION = "violation"  # no legitimate client sends this: the session ends


@dataclass(frozen=True)
class ClientPolicy:
    allow_clipboard: bool = True
    allow_file_transfer: bool = False

    @classmethod
    def from_recording_policy(cls, policy: dict) -> "ClientPolicy":
        return cls(allow_clipboard=bool(policy.get("allow_clipboard", True)),
                   allow_file_transfer=bool(policy.get("allow_file_transfer", False)))


# opcode -> exact argument counts a display client uses (guacamole-common-js 1.3-1.6).
_INPUT_ARITY = {
    "key": (2,),
    "mouse": (3,),
    "size": (2, 3),
    "sync": (1, 2),
    "ack": (3,),
    "nop": (0,),
    "disconnect": (0,),
    "touch": (7,),
}
# opcode -> (kind, argument count, which argument is the new stream's index). From Client.js
# (guacamole-common-js 1.3-1.6): `clipboard,stream,mimetype`; `file,stream,mimetype,filename`;
# `put,object,stream,mimetype,name` (an upload into a filesystem object guacd announced: the stream
# is the second argument, and there are four, not five: five ended every legitimate upload).
_STREAM_OPEN = {"clipboard": ("clipboard", 2, 1), "file": ("file", 3, 1), "put": ("file", 4, 2)}
_STREAM_DATA = {"blob": 2, "end": 1}
_DOWNLOAD = {"get": 2}
MAX_OPEN_STREAMS = 64


@dataclass
class ClientFilter:
    policy: ClientPolicy
    open_streams: dict[str, str] = field(default_factory=dict)  # stream index -> kind

    def check(self, ins: Instruction) -> tuple[Verdict, str]:
        """The verdict on one instruction, and why when it is not forwarded."""
        opcode, argc = ins[0], len(ins) - 1
        if opcode in _INPUT_ARITY:
            if argc not in _INPUT_ARITY[opcode]:
                return Verdict.VIOLATION, f"'{opcode}' with {argc} arguments"
            return Verdict.FORWARD, ""
        if opcode in _STREAM_OPEN:
            kind, arity, stream_arg = _STREAM_OPEN[opcode]
            if argc != arity:
                return Verdict.VIOLATION, f"'{opcode}' with {argc} arguments"
            stream = ins[stream_arg]
            if not self._allowed(kind):
                return Verdict.REFUSE, f"{kind} transfer is not allowed on this connection"
            if len(self.open_streams) >= MAX_OPEN_STREAMS:
                return Verdict.VIOLATION, "too many open streams"
            self.open_streams[stream] = kind
            return Verdict.FORWARD, ""
        if opcode in _STREAM_DATA:
            if argc != _STREAM_DATA[opcode]:
                return Verdict.VIOLATION, f"'{opcode}' with {argc} arguments"
            if ins[1] not in self.open_streams:
                # A refused stream's data still arrives until the browser reads our ack.
                return Verdict.REFUSE, f"stream {ins[1]} is not open"
            if opcode == "end":
                del self.open_streams[ins[1]]
            return Verdict.FORWARD, ""
        if opcode in _DOWNLOAD:
            if argc != _DOWNLOAD[opcode]:
                return Verdict.VIOLATION, f"'{opcode}' with {argc} arguments"
            if not self.policy.allow_file_transfer:
                return Verdict.REFUSE, "file transfer is not allowed on this connection"
            return Verdict.FORWARD, ""
        return Verdict.VIOLATION, f"'{opcode}' is not something a display client sends"

    def _allowed(self, kind: str) -> bool:
        return self.policy.allow_clipboard if kind == "clipboard" else self.policy.allow_file_transfer


class WatcherFilter:
    """A live watcher (read-only join) only acknowledges frames and streams."""

    _ALLOWED = {"sync": (1, 2), "nop": (0,), "ack": (3,)}

    def check(self, ins: Instruction) -> tuple[Verdict, str]:
        arity = self._ALLOWED.get(ins[0])
        if arity is None:
            return Verdict.REFUSE, f"a watcher cannot send '{ins[0]}'"
        if len(ins) - 1 not in arity:
            return Verdict.VIOLATION, f"'{ins[0]}' with {len(ins) - 1} arguments"
        return Verdict.FORWARD, ""
