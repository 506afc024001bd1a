"""Local spool: each session's recording as numbered segment files, fsync'd on sealing.

Layout under the spool directory::

    <session-id>/session.json         who/what/when, wall-clock start, finished flag
    <session-id>/000001.part          the segment being written
    <session-id>/000001.guac          a sealed segment (fsync'd, then renamed)
    <session-id>/000001.json          its size and SHA-256, written before the rename

A sealed segment is durable: only then is it acknowledged and handed to the
uploader. Any failure to write raises ``RecordingError``: the relay decides,
per connection policy, whether the session must end (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from gui_recorder.errors import RecordingError

SESSION_FILE = "session.json"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durably(path: Path, value) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SpoolSession:
    """Append-only writer of one session's segments."""

    def __init__(self, directory: Path, meta: dict, max_bytes: int, max_seconds: float, clock=time.monotonic):
        self.dir = directory
        self.meta = dict(meta)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._clock = clock
        self._index = 0
        self._file = None
        self._hash = None
        self._size = 0
        self._opened_at = 0.0
        self.sealed: list[dict] = []
        try:
            directory.mkdir(parents=True, exist_ok=False)
            write_json_durably(directory / SESSION_FILE, {**self.meta, "finished": False})
        except OSError as exc:
            raise RecordingError(f"cannot create the recording spool {directory}: {exc}") from exc

    def _open_next(self) -> None:
        self._index += 1
        path = self.dir / f"{self._index:06d}.part"
        self._file = open(path, "wb", buffering=1 << 16)
        self._hash = hashlib.sha256()
        self._size = 0
        self._opened_at = self._clock()

    def write(self, data: bytes) -> None:
        try:
            if self._file is None:
                self._open_next()
            self._file.write(data)
        except OSError as exc:
            raise RecordingError(f"cannot write the recording spool {self.dir}: {exc}") from exc
        self._hash.update(data)
        self._size += len(data)
        if self._size >= self.max_bytes:
            self.seal()

    def due(self) -> bool:
        """True when the open segment is older than ``max_seconds`` and should be sealed."""
        return self._file is not None and self._size > 0 and self._clock() - self._opened_at >= self.max_seconds

    def seal(self) -> dict | None:
        """Make the open segment durable and visible to the uploader."""
        if self._file is None:
            return None
        name = f"{self._index:06d}"
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            info = {"index": self._index, "size": self._size, "sha256": self._hash.hexdigest()}
            write_json_durably(self.dir / f"{name}.json", info)
            os.replace(self.dir / f"{name}.part", self.dir / f"{name}.guac")
            _fsync_dir(self.dir)
        except OSError as exc:
            raise RecordingError(f"cannot make the recording segment {self.dir / name} durable: {exc}") from exc
        finally:
            self._file = None
        self.sealed.append(info)
        return info

    def finish(self, **meta) -> None:
        """Seal the last segment and mark the session finished (the uploader then completes it)."""
        self.seal()
        self.meta.update(meta)
        try:
            write_json_durably(self.dir / SESSION_FILE, {**self.meta, "finished": True})
        except OSError as exc:
            raise RecordingError(f"cannot finish the recording spool {self.dir}: {exc}") from exc

    def abandon(self) -> None:
        """Close the open file without sealing (the spool recovery seals it later)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None


    def discard(self) -> None:
        """Remove a session that never started (nothing was shown, nothing to keep)."""
        self.abandon()
        shutil.rmtree(self.dir, ignore_errors=True)


class SegmentSpool:
    """The spool directory shared by all sessions of this gateway."""

    def __init__(self, root: Path, max_bytes: int = 1 << 20, max_seconds: float = 10.0):
        self.root = root
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    def open_session(self, session_id: str, meta: dict) -> SpoolSession:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create the spool directory {self.root}: {exc}") from exc
        return SpoolSession(self.root / session_id, meta, self.max_bytes, self.max_seconds)

    def session_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and (p / SESSION_FILE).exists())

    def size_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def recover(self, session_dir: Path, reason: str) -> None:
        """Seal what a crashed gateway left open and mark the session finished."""
        for part in sorted(session_dir.glob("*.part")):
            data = part.read_bytes()
            info = {"index": int(part.stem), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            write_json_durably(part.with_suffix(".json"), info)
            os.replace(part, part.with_suffix(".guac"))
        _fsync_dir(session_dir)
        meta = json.loads((session_dir / SESSION_FILE).read_text())
        if not meta.get("finished"):
            meta.update(finished=True, end_reason=reason, interrupted=True)
            write_json_durably(session_dir / SESSION_FILE, meta)
