"""A sink's events on disk while it is down: appended in order, read back in order, resumed after a restart.

One directory per sink and process (``claim``: the first slot whose lock file no live
process holds, so a restarted gateway or worker takes its own leftovers back).
``events.jsonl`` holds one event per line; ``offset`` the bytes of it already
delivered. Writes go straight to the OS (no fsync per event): the database holds
every event anyway, the spool only carries them across a sink's outage.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

MAX_SLOTS = 64


class Spool:
    def __init__(self, directory: Path, max_bytes: int):
        self.dir = directory
        self.max_bytes = max_bytes
        self._data = directory / "events.jsonl"
        self._offset_file = directory / "offset"
        self._file = open(self._data, "ab+")  # noqa: SIM115 - held for the spool's life
        self._offset = self._read_offset()
        self._size = self._file.seek(0, os.SEEK_END)
        if self._offset > self._size:  # a torn offset write: deliver again rather than lose
            self._offset = 0
        self.pending = self._count_lines(self._offset)

    # -- claim ---------------------------------------------------------------------------------

    @classmethod
    def claim(cls, root: Path, max_bytes: int) -> tuple["Spool", object]:
        """The first free slot under ``root``, locked for this process's life (returns the lock's file)."""
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            directory = root / str(slot)
            directory.mkdir(mode=0o700, exist_ok=True)
            lock = open(directory / "lock", "a")  # noqa: SIM115 - the lock lives as long as the spool
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            return cls(directory, max_bytes), lock
        raise OSError(f"every spool slot under {root} is held by a live process ({MAX_SLOTS})")

    # -- state ---------------------------------------------------------------------------------

    def _read_offset(self) -> int:
        try:
            return int(self._offset_file.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _write_offset(self) -> None:
        tmp = self._offset_file.with_suffix(".tmp")
        tmp.write_text(str(self._offset))
        os.replace(tmp, self._offset_file)

    def _count_lines(self, start: int) -> int:
        self._file.seek(start)
        return sum(1 for _ in self._file)

    @property
    def bytes(self) -> int:
        return self._size - self._offset

    # -- use -----------------------------------------------------------------------------------

    def append(self, events: list[dict]) -> list[dict]:
        """Appends what fits under max_bytes, in order; returns the events that did not fit (dropped)."""
        lines = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for e in events]
        kept = 0
        room = self.max_bytes - self.bytes
        out = bytearray()
        for line in lines:
            if len(line) > room:
                break
            out += line
            room -= len(line)
            kept += 1
        if out:
            self._file.seek(0, os.SEEK_END)
            self._file.write(out)
            self._file.flush()
            self._size += len(out)
            self.pending += kept
        return events[kept:]

    def peek(self, limit: int) -> tuple[list[dict], int]:
        """Up to ``limit`` of the oldest undelivered events, and the byte length they take."""
        self._file.seek(self._offset)
        events, length = [], 0
        for line in self._file:
            if not line.endswith(b"\n"):
                break  # a line still being written cannot be: appends are whole; a torn tail from a crash
            events.append(json.loads(line))
            length += len(line)
            if len(events) >= limit:
                break
        return events, length

    def commit(self, count: int, length: int) -> None:
        """The first ``count`` events (``length`` bytes) were delivered."""
        self._offset += length
        self.pending -= count
        if self._offset >= self._size:  # all delivered: start the file again
            self._file.truncate(0)
            self._offset = self._size = 0
            self.pending = 0
        self._write_offset()

    def prepend(self, events: list[dict]) -> None:
        """Puts events back before everything undelivered (a broken connection's unconfirmed tail)."""
        if not events:
            return
        self._file.seek(self._offset)
        rest = self._file.read()
        head = b"".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for e in events)
        tmp = self._data.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(head + rest)
        os.replace(tmp, self._data)
        self._file.close()
        self._file = open(self._data, "ab+")  # noqa: SIM115
        self._offset, self._size = 0, len(head) + len(rest)
        self.pending += len(events)
        self._write_offset()

    def close(self) -> None:
        self._file.close()
