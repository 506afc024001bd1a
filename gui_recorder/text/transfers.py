"""Clipboard and file transfers: what crossed the session besides pixels and keys, from its streams.

The recording holds both directions' streams already: guacd's as relayed
(``clipboard``, ``file``, ``body`` then ``blob``/``end``), the browser's as
``gr-client,<ts>,<wire>`` (``clipboard``, ``file``, ``put`` then ``blob``/
``end``; recording/recorder.py). ``TransferDecoder`` follows each stream
(the two sides number theirs independently) and, at its end, yields:

- clipboard text: direction (``to remote``: the user pasted into the session;
  ``from remote``: the session's clipboard reached the user), size in bytes and
  the text itself (cut at ``MAX_CLIPBOARD_CHARS``);
- a file: name, direction (``upload``/``download``), size, SHA-256 and
  outcome: ``complete``, ``failed: <guacd's message>`` (an error ``ack``) or
  ``incomplete`` (the session ended mid-transfer). With ``keep_files`` its bytes
  too (up to ``MAX_KEPT_FILE_BYTES``), for the evidence object.

Each becomes one timeline entry (``Transfer.text`` carries the details, so
they are searchable and the player shows them); the masking of the guardrails
issue applies to ``text`` when it lands.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass, field

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol import Instruction, Parser
from gui_recorder.protocol.timeline import Origin

log = logging.getLogger(__name__)

CLIENT_OPCODE = "gr-client"  # recording/recorder.py
MAX_CLIPBOARD_CHARS = 8192  # of the text kept in the entry; size and hash cover all of it
MAX_KEPT_FILE_BYTES = 256 << 20
MAX_STREAMS = 256  # streams followed at once (limits on input)


@dataclass(frozen=True)
class Transfer:
    """One clipboard copy or file transfer; offsets are ms from the recording's first timestamp."""

    source: str  # 'clipboard' | 'file'
    direction: str  # clipboard: 'to remote' | 'from remote'; file: 'upload' | 'download'
    name: str  # the file's name ('' for clipboard)
    mimetype: str
    size: int
    sha256: str
    outcome: str  # 'complete' | 'failed: ...' | 'incomplete'
    start_ms: int
    end_ms: int
    content: str = ""  # clipboard text (cut)
    data: bytes | None = field(default=None, repr=False)  # the file's bytes, when kept

    @property
    def text(self) -> str:
        if self.source == "clipboard":
            return f"[clipboard {self.direction}, {self.size} bytes] {self.content}"
        return (f"[{self.direction}, {self.size} bytes, sha256 {self.sha256}, {self.outcome}] "
                f"{self.name}")


@dataclass
class _Stream:
    source: str
    direction: str
    name: str
    mimetype: str
    start_ms: int
    keep: bool
    size: int = 0
    digest: object = field(default_factory=hashlib.sha256)
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0  # bytes in chunks
    failed: str | None = None


class TransferDecoder:
    def __init__(self, origin: Origin | None = None, keep_files: bool = False):
        self.origin = origin or Origin()
        self.keep_files = keep_files
        self._streams: dict[tuple[str, str], _Stream] = {}  # (side that opened it, index) -> stream
        self._now = 0

    def feed(self, instruction: Instruction) -> list[Transfer]:
        offset = self.origin.observe(instruction)
        if offset is not None:
            self._now = offset
        if instruction[0] == CLIENT_OPCODE and len(instruction) == 3:
            try:
                ts = int(instruction[1])
                inner = Parser().feed_text(instruction[2])
            except (ValueError, ProtocolError):
                return []
            if self.origin.first is not None:
                self._now = max(self._now, ts - self.origin.first)
            out = []
            for ins in inner:
                out += self._instruction("client", ins)
            return out
        return self._instruction("server", instruction)

    def flush(self) -> list[Transfer]:
        """The session ended: streams still open are transfers that did not finish."""
        out = [self._done(s, "incomplete") for s in self._streams.values()]
        self._streams.clear()
        return out

    def _instruction(self, side: str, ins: Instruction) -> list[Transfer]:
        op, n = ins[0], len(ins)
        upload = side == "client"
        if op == "clipboard" and n == 3:
            self._open(side, ins[1], "clipboard", "to remote" if upload else "from remote", "", ins[2])
        elif op == "file" and n == 4:
            self._open(side, ins[1], "file", "upload" if upload else "download", ins[3], ins[2])
        elif op == "put" and n == 5 and upload:  # put,object,stream,mimetype,name
            self._open(side, ins[2], "file", "upload", ins[4], ins[3])
        elif op == "body" and n == 5 and not upload:  # body,object,stream,mimetype,name: a download
            if ins[3] != "application/vnd.glyptodon.guacamole.stream-index+json":  # a directory listing
                self._open(side, ins[2], "file", "download", ins[4], ins[3])
        elif op == "blob" and n == 3:
            stream = self._streams.get((side, ins[1]))
            if stream is not None:
                self._blob(stream, ins[2])
        elif op == "end" and n == 2:
            stream = self._streams.pop((side, ins[1]), None)
            if stream is not None:
                return [self._done(stream, f"failed: {stream.failed}" if stream.failed else "complete")]
        elif op == "ack" and n == 4 and ins[3] not in ("0", ""):
            # The other side refused or failed the stream (e.g. guacd could not write the upload).
            other = "server" if upload else "client"
            stream = self._streams.get((other, ins[1]))
            if stream is not None and stream.failed is None:
                stream.failed = f"{ins[2]} (status {ins[3]})"
                if stream.source == "file":
                    return [self._done(self._streams.pop((other, ins[1])), f"failed: {stream.failed}")]
        return []

    def _open(self, side: str, index: str, source: str, direction: str, name: str, mimetype: str) -> None:
        if len(self._streams) >= MAX_STREAMS:
            log.warning("more than %d open streams in a recording: %s %s not followed", MAX_STREAMS, source, name)
            return
        keep = source == "clipboard" or self.keep_files
        self._streams[(side, index)] = _Stream(source, direction, name[:1024], mimetype[:255], self._now, keep)

    def _blob(self, stream: _Stream, data: str) -> None:
        try:
            chunk = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            stream.failed = stream.failed or "undecodable data"
            return
        stream.size += len(chunk)
        stream.digest.update(chunk)
        limit = MAX_CLIPBOARD_CHARS * 4 if stream.source == "clipboard" else MAX_KEPT_FILE_BYTES
        if stream.keep and stream.kept + len(chunk) <= limit:
            stream.chunks.append(chunk)
            stream.kept += len(chunk)
        elif stream.keep and stream.source == "file":
            stream.keep = False  # too big to keep: name, size and hash still say what it was
            stream.chunks, stream.kept = [], 0

    def _done(self, stream: _Stream, outcome: str) -> Transfer:
        data = b"".join(stream.chunks)
        content = ""
        if stream.source == "clipboard":
            content = data.decode("utf-8", errors="replace")[:MAX_CLIPBOARD_CHARS]
        return Transfer(stream.source, stream.direction, stream.name, stream.mimetype, stream.size,
                        stream.digest.hexdigest(), outcome, stream.start_ms, self._now, content,
                        data if stream.source == "file" and stream.keep else None)
