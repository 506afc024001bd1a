"""Local spool: each session's recording as numbered segment files, written through, fsync'd on sealing.

Layout under the spool directory::

    <session-id>/session.json         who/what/when, wall-clock start, finished flag
    <session-id>/000001.part          the segment being written
    <session-id>/000001.guac          a sealed segment (fsync'd, then renamed)
    <session-id>/000001.json          its size and SHA-256, written before the rename
    <session-id>/quarantine.json      the uploader gave up on this session, and why
    <session-id>/datakey.json         sealed spools: the wrapped data key; checkpoints.json: signatures

With sealing keys (issue 13; the gateway always has them) every write is one
AES-256-GCM record (``gui_recorder.sealing.records``): the spool, like the
store, holds only ciphertext, and each sealed segment extends a signed hash
chain (``recording.sealed``). Without them (unit tests, old spools) segments
are the plain protocol.

Every ``write`` goes straight to the OS (no userspace buffer): a full disk or
an I/O error surfaces at the write that hit it, before the relay forwards what
it was recording, and what the kernel accepted survives a killed gateway
(issue 10: a 64 KiB buffer hid ENOSPC until the next flush and lost its
contents with the process).

Sealing (fsync, the segment's JSON, the rename) is slow on a busy disk and
must not run on the event loop: ``write`` only *rotates* a full segment into
``unsealed``; the caller seals those in a thread with ``Segment.seal``.

Any failure to write raises ``RecordingError``; after the first one the session
refuses every further write, so its last bytes on disk are exactly what was
accepted before the failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from gui_recorder.errors import RecordingError
from gui_recorder.recording.sealed import DATA_KEY_FILE, SpoolSeal
from gui_recorder.sealing.keys import SealingKeys
from gui_recorder.sealing.records import OVERHEAD, whole_length

SESSION_FILE = "session.json"
QUARANTINE_FILE = "quarantine.json"


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


class Segment:
    """One segment file, open for appending until it is rotated, then sealed (in a thread)."""

    def __init__(self, directory: Path, index: int, opened_at: float, seal: SpoolSeal | None = None):
        self.dir = directory
        self.index = index
        self.opened_at = opened_at
        self.size = 0
        self._seal = seal
        self.records = 0
        self.plain_size = 0
        self.hash = hashlib.sha256()
        # Unbuffered: each write is one write(2), so the kernel has it (or we know it failed) at once.
        self.file = open(directory / f"{index:06d}.part", "wb", buffering=0)

    @property
    def name(self) -> str:
        return f"{self.index:06d}"

    def write(self, data: bytes, final: bool = False) -> None:
        if self._seal is not None:
            plain = len(data)
            data = self._seal.records.seal(self.index, self.records, data, final)
            self.records += 1
            self.plain_size += plain
        view = memoryview(data)
        while view:
            # A raw write may be partial (a filling disk); what it took is on disk and in the hash.
            n = self.file.write(view)
            if n is None or n <= 0:
                raise OSError(28, "the spool accepted no bytes")
            self.hash.update(view[:n])
            self.size += n
            view = view[n:]

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass

    def info(self) -> dict:
        info = {"index": self.index, "size": self.size, "sha256": self.hash.hexdigest()}
        if self._seal is not None:
            info.update(chain=self._seal.next_chain(self.index, info["sha256"]), records=self.records,
                        plain_size=self.plain_size)
        return info

    def seal(self) -> dict:
        """fsync, write its size and SHA-256, rename to ``.guac``. Blocking: run it off the event loop."""
        try:
            os.fsync(self.file.fileno())
            self.file.close()
            info = self.info()
            write_json_durably(self.dir / f"{self.name}.json", info)
            os.replace(self.dir / f"{self.name}.part", self.dir / f"{self.name}.guac")
            _fsync_dir(self.dir)
        except OSError as exc:
            self.close()
            raise RecordingError(f"cannot make the recording segment {self.dir / self.name} durable: {exc}") from exc
        return info


class SpoolSession:
    """Append-only writer of one session's segments. Writes on the caller's thread; seals anywhere."""

    def __init__(self, directory: Path, meta: dict, max_bytes: int, max_seconds: float, clock=time.monotonic,
                 sealing: SealingKeys | None = None):
        self.dir = directory
        self.meta = dict(meta)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self._clock = clock
        self._index = 0
        self._segment: Segment | None = None
        self.unsealed: list[Segment] = []  # rotated, waiting for ``seal_pending`` (in a thread)
        self.sealed: list[dict] = []
        self.failure: RecordingError | None = None
        self.seal_state: SpoolSeal | None = None
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=False)
            if sealing is not None:  # the wrapped data key before session.json: the uploader never sees one without
                self.seal_state = SpoolSeal(directory, sealing, write_json_durably, clock=clock)
            write_json_durably(directory / SESSION_FILE, {**self.meta, "finished": False})
        except OSError as exc:
            raise RecordingError(f"cannot create the recording spool {directory}: {exc}") from exc

    # Kept as an attribute so a fault-injection test can swap the open file for /dev/full.
    @property
    def _file(self):
        return self._segment.file if self._segment is not None else None

    @_file.setter
    def _file(self, value) -> None:
        if value is None:
            self._segment = None
        else:
            self._segment.file = value

    def write(self, data: bytes, final: bool = False) -> None:
        """Hand ``data`` to the OS now; raises RecordingError (and refuses all later writes) if it cannot."""
        if self.failure is not None:
            raise self.failure
        try:
            if self._segment is None:
                self._index += 1
                self._segment = Segment(self.dir, self._index, self._clock(), self.seal_state)
            self._segment.write(data, final)
        except OSError as exc:
            self.failure = RecordingError(f"cannot write the recording spool {self.dir}: {exc}")
            raise self.failure from exc
        if self._segment.size >= self.max_bytes:
            self.rotate()

    def due(self) -> bool:
        """True when the open segment is older than ``max_seconds`` and should be sealed."""
        segment = self._segment
        return segment is not None and segment.size > 0 and self._clock() - segment.opened_at >= self.max_seconds

    def rotate(self) -> None:
        """Close the open segment for writing; the next write starts a new one. Cheap: no fsync here."""
        if self._segment is not None:
            self.unsealed.append(self._segment)
            self._segment = None

    def seal_pending(self) -> list[dict]:
        """Seal every rotated segment, in order. Blocking (fsync): call it in a thread."""
        done = []
        while self.unsealed:
            segment = self.unsealed[0]
            try:
                info = segment.seal()
            except RecordingError as exc:
                self.failure = self.failure or exc
                raise
            self.unsealed.pop(0)
            self.sealed.append(info)
            done.append(info)
            if self.seal_state is not None:
                self.seal_state.add(info["index"], info["sha256"])
        if done and self.seal_state is not None and self.seal_state.due():
            self._checkpoint()
        return done

    def _checkpoint(self, final: bool = False, end: str = "open") -> None:
        try:
            self.seal_state.checkpoint(final, end)
        except OSError as exc:
            self.failure = self.failure or RecordingError(f"cannot sign the recording {self.dir}: {exc}")
            raise self.failure from exc

    def seal(self) -> dict | None:
        """Rotate and seal now (blocking). Returns the last sealed segment's info, if any."""
        self.rotate()
        done = self.seal_pending()
        return done[-1] if done else None

    def finish(self, **meta) -> None:
        """Seal the last segment and mark the session finished (the uploader then completes it). Blocking."""
        if self.seal_state is not None:
            self.write(b"", final=True)  # the end, authenticated: a recording cut after it is detectably cut
        self.seal()
        if self.seal_state is not None:
            self._checkpoint(final=True, end="clean")
        self.meta.update(meta)
        try:
            write_json_durably(self.dir / SESSION_FILE, {**self.meta, "finished": True})
        except OSError as exc:
            raise RecordingError(f"cannot finish the recording spool {self.dir}: {exc}") from exc

    def abandon(self) -> None:
        """Close every open file without sealing (``SegmentSpool.recover`` seals them later)."""
        for segment in [*self.unsealed, *([self._segment] if self._segment else [])]:
            segment.close()
        self.unsealed = []
        self._segment = None

    def discard(self) -> None:
        """Remove a session that never started (nothing was shown, nothing to keep)."""
        self.abandon()
        shutil.rmtree(self.dir, ignore_errors=True)


class SegmentSpool:
    """The spool directory shared by all sessions of this gateway."""

    def __init__(self, root: Path, max_bytes: int = 1 << 20, max_seconds: float = 10.0,
                 sealing: SealingKeys | None = None):
        self.root = root
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.sealing = sealing

    def open_session(self, session_id: str, meta: dict) -> SpoolSession:
        try:
            # Recordings are evidence: only this account may read the spool (issue 10).
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create the spool directory {self.root}: {exc}") from exc
        return SpoolSession(self.root / session_id, meta, self.max_bytes, self.max_seconds, sealing=self.sealing)

    def session_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and (p / SESSION_FILE).exists())

    def size_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    def needs_recovery(self, session_dir: Path) -> bool:
        """A session nobody writes any more that was never finished (crash, or a recording that failed)."""
        if any(session_dir.glob("*.part")):
            return True
        meta = json.loads((session_dir / SESSION_FILE).read_text())
        return not meta.get("finished")

    def recover(self, session_dir: Path, reason: str, *, interrupted: bool = True,
                recording_error: str | None = None) -> None:
        """Seal what a dead writer left open and mark the session finished. Raises OSError (e.g. still full).

        ``interrupted``: the gateway died mid-session; otherwise the recording
        failed (``recording_error``) and the gateway ended the session itself.
        """
        seal = self._reopen_seal(session_dir)
        for part in sorted(session_dir.glob("*.part")):
            data = part.read_bytes()
            extra = {}
            if seal is not None:
                # A torn last record was never acknowledged (its write had not returned): cut it off.
                whole, records = whole_length(data)
                data = data[:whole]
                os.truncate(part, whole)
                sha = hashlib.sha256(data).hexdigest()
                extra = {"chain": seal.next_chain(int(part.stem), sha), "records": records,
                         "plain_size": whole - records * OVERHEAD}
            info = {"index": int(part.stem), "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **extra}
            with open(part, "rb+") as f:
                os.fsync(f.fileno())
            write_json_durably(part.with_suffix(".json"), info)
            os.replace(part, part.with_suffix(".guac"))
            if seal is not None:
                seal.add(info["index"], info["sha256"])
        _fsync_dir(session_dir)
        meta = json.loads((session_dir / SESSION_FILE).read_text())
        if not meta.get("finished"):
            if seal is not None:  # signed by the gateway that sealed it after the crash, and says so
                seal.checkpoint(final=True, end="recovered")
            meta.update(finished=True, end_reason=reason, interrupted=interrupted)
            if recording_error:
                meta["recording_error"] = recording_error
            write_json_durably(session_dir / SESSION_FILE, meta)

    def _reopen_seal(self, session_dir: Path) -> SpoolSeal | None:
        """The seal of a sealed directory a dead writer left, its chain rebuilt from what is sealed."""
        if self.sealing is None or not (session_dir / DATA_KEY_FILE).exists():
            return None
        infos = {}
        manifest = session_dir / "manifest.json"  # the uploader's record of what already reached the store
        if manifest.exists():
            infos.update({s["index"]: s for s in json.loads(manifest.read_text()).get("segments", [])})
        for path in session_dir.glob("[0-9]*.guac"):
            infos[int(path.stem)] = json.loads(path.with_suffix(".json").read_text())
        return SpoolSeal.reopen(session_dir, self.sealing, write_json_durably, [infos[i] for i in sorted(infos)])

    def quarantine(self, session_dir: Path, reason: str) -> None:
        """Set a session aside: the uploader skips it until an operator removes ``quarantine.json``."""
        write_json_durably(session_dir / QUARANTINE_FILE, {"reason": reason, "at": time.time()})

    def quarantined(self) -> dict[str, str]:
        out = {}
        for d in self.session_dirs():
            marker = d / QUARANTINE_FILE
            if marker.exists():
                try:
                    out[d.name] = json.loads(marker.read_text()).get("reason", "")
                except (OSError, ValueError):
                    out[d.name] = "quarantined (marker unreadable)"
        return out
