"""The spool side of sealing: one session's data key, chain head and signed checkpoints.

``SpoolSeal`` lives beside a ``SpoolSession``: each write becomes an encrypted
record (``sealing.records``), each sealed segment extends the chain, and a
checkpoint over the chain is signed when one is due (``seal_checkpoint_seconds``)
and at the end. Its files in the session's spool directory::

    datakey.json        the data key's envelope (wrapped by the KEK; the key itself is only in memory)
    checkpoints.json    every signed checkpoint so far (text + signature), written durably

Reading back (``open_segment``) checks what serving must never pass as whole:
the ciphertext against its SHA-256 and chain value, then every record's tag.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gui_recorder.errors import TamperedError
from gui_recorder.sealing.chain import Checkpoint, genesis, link, now_iso
from gui_recorder.sealing.keys import KeyRing, SealingKeys, signed_entry
from gui_recorder.sealing.records import ALGORITHM, RecordSealer

DATA_KEY_FILE = "datakey.json"
CHECKPOINTS_FILE = "checkpoints.json"


class SpoolSeal:
    def __init__(self, directory: Path, keys: SealingKeys, write_json: Callable[[Path, object], None],
                 envelope: dict | None = None, clock=time.monotonic):
        self.dir = directory
        self.session_id = directory.name
        self.keys = keys
        self._write_json = write_json
        self._clock = clock
        if envelope is None:
            data_key = keys.keyring.new_data_key(self.session_id)
            envelope = data_key.envelope
            write_json(directory / DATA_KEY_FILE, envelope)
            key = data_key.key
        else:
            key = keys.keyring.open(envelope)
        self.envelope = envelope
        self.records = RecordSealer(self.session_id, key)
        self.head = genesis(self.session_id)
        self.segments: list[tuple[int, str]] = []
        self.checkpoints: list[dict] = []
        self._last_checkpoint = clock()

    @classmethod
    def reopen(cls, directory: Path, keys: SealingKeys, write_json, segments: list[dict]) -> SpoolSeal:
        """The seal of a directory a dead gateway left: its chain rebuilt from ``segments`` (index order)."""
        seal = cls(directory, keys, write_json, envelope=json.loads((directory / DATA_KEY_FILE).read_text()))
        for info in segments:
            seal.add(info["index"], info["sha256"])
        path = directory / CHECKPOINTS_FILE
        seal.checkpoints = json.loads(path.read_text()) if path.exists() else []
        return seal

    def next_chain(self, index: int, sha256: str) -> str:
        return link(self.head, index, sha256)

    def add(self, index: int, sha256: str) -> None:
        self.head = link(self.head, index, sha256)
        self.segments.append((index, sha256))

    def due(self) -> bool:
        return self._clock() - self._last_checkpoint >= self.keys.checkpoint_seconds

    def checkpoint(self, final: bool = False, end: str = "open") -> dict:
        """Sign the chain as it stands and store the checkpoint durably. Blocking (fsync)."""
        signer = self.keys.signer
        cp = Checkpoint(self.session_id, self.head, final, end, now_iso(), signer.key_id,
                        self.envelope["data_key_id"], ALGORITHM, list(self.segments))
        text = cp.text()
        entry = signed_entry(signer, text)
        self.checkpoints.append(entry)
        self._write_json(self.dir / CHECKPOINTS_FILE, self.checkpoints)
        self._last_checkpoint = self._clock()
        return entry


def sealing_summary(envelope: dict, checkpoints: list[dict], signing_key: str | None) -> dict:
    """What a manifest says about its sealing: ids, algorithm, chain head, checkpoints, times."""
    last = Checkpoint.parse(checkpoints[-1]["text"]) if checkpoints else None
    return {"algorithm": ALGORITHM, "data_key_id": envelope["data_key_id"], "kek_id": envelope["kek_id"],
            "signing_key_id": last.signing_key if last else signing_key,
            "chain_head": last.chain if last else None, "signed_at": last.at if last else None,
            "final": bool(last and last.final), "checkpoints": checkpoints}


def open_segment(records: RecordSealer, index: int, data: bytes, expected: dict | None = None,
                 previous_chain: str | None = None, allow_torn_tail: bool = False) -> Iterator[bytes]:
    """A sealed segment's plaintext, after checking it against its manifest entry ``expected``."""
    if expected is not None:
        sha = hashlib.sha256(data).hexdigest()
        if sha != expected.get("sha256") or len(data) != expected.get("size"):
            raise TamperedError(f"segment {index:06d} of session {records.session_id} does not match the SHA-256 "
                                "its manifest names: altered or replaced", records.session_id, index)
        if previous_chain is not None and expected.get("chain") != link(previous_chain, index, sha):
            raise TamperedError(f"segment {index:06d} of session {records.session_id} breaks the hash chain: a "
                                "segment before it is missing, extra or reordered", records.session_id, index)
    yield from records.open(index, data, allow_torn_tail=allow_torn_tail)


def data_key_records(keyring: KeyRing, envelope: dict) -> RecordSealer:
    return RecordSealer(envelope["session_id"], keyring.open(envelope))
