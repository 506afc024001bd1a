"""An SSH session's printed output as guacd writes it (its typescript), read as the session runs.

guacd renders a terminal into images, so the Guacamole stream carries no text
for it; but given ``typescript-path``/``typescript-name`` it also writes every
byte the SSH server printed to a file (``script``'s format: the data file and
``NAME.timing``), flushed with each frame. The recorder reads what is new at
each batch guacd sends and writes it into the recording as ``gr-typescript,
<ts>,<text>`` (an opcode players skip), so the output is in the one recording,
stamped in guacd's clock, uploaded, sealed and forgotten with it, and read by
the text stage without OCR (``text/terminal.py``).

This needs guacd's files where the gateway can read them: guacd is local in the
dev stack; a remote guacd writes them to a directory shared with the gateway
(``typescript_dir`` names the same path on both). Where there is none,
``record_typescripts=false``: the terminal is then searchable by OCR only.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = "[BEGIN TYPESCRIPT]\n"  # guacd 1.x terminal/typescript.h
MAX_READ = 1 << 20  # per batch: a `cat` of a huge file is recorded over several batches, never all at once


class TypescriptTail:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._head = ""  # the start of the file while it could still be guacd's header
        self.bytes_read = 0
        self.error: str | None = None

    def read(self) -> str:
        """What guacd wrote since the last call ('' before guacd created the file)."""
        chunks, size = [], 0
        try:
            if self._fd is None:
                try:
                    self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                except FileNotFoundError:
                    return ""
            while size < MAX_READ:
                chunk = os.read(self._fd, min(1 << 16, MAX_READ - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            # Not fatal for the session: the screen is still recorded (and OCR'd); the gap is logged.
            if self.error is None:
                log.error("typescript %s cannot be read: %s", self.path, exc)
            self.error = str(exc)
        self.bytes_read += size
        text = self._decoder.decode(b"".join(chunks))
        if not self._started:
            text = self._head + text
            if len(text) < len(HEADER) and HEADER.startswith(text):
                self._head = text
                return ""
            self._started = True
            if text.startswith(HEADER):
                text = text[len(HEADER):]
        return text

    def close(self) -> None:
        """Stop reading and delete guacd's files: the recording holds the output now (a plaintext copy of
        the terminal must not outlive it, e.g. past a forget)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for path in (self.path, self.path.with_name(self.path.name + ".timing")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
