"""Read a session's recording back as one Guacamole protocol stream.

A sealed recording (issue 13) is decrypted on the fly, one segment at a time
(memory bounded by the segment size), each segment checked first against its
manifest entry and the hash chain, each record by its GCM tag: a tampered
recording raises ``TamperedError`` naming the first bad segment, after only
the segments before it were yielded, so it is never served as if whole. Its
data key is unwrapped with the caller's ``KeyRing``; without one, or without
the KEK that wrapped it, ``KeyUnavailableError`` names the key. Recordings
made before sealing (no ``sealing`` in the manifest) are read as they are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from gui_recorder.errors import KeyUnavailableError, NotFoundError, TamperedError
from gui_recorder.recording.sealed import DATA_KEY_FILE, data_key_records, open_segment
from gui_recorder.sealing.chain import genesis
from gui_recorder.sealing.keys import KeyRing
from gui_recorder.storage.keys import data_key_key, manifest_key
from gui_recorder.storage import ObjectStore


def load_manifest(store: ObjectStore, session_id: str) -> dict | None:
    try:
        return store.get_json(manifest_key(session_id))
    except NotFoundError:
        return None


def load_envelope(store: ObjectStore, spool_root: Path, session_id: str, manifest: dict | None) -> dict | None:
    """The wrapped data key of a sealed session (the store's copy: rotation rewrites it), None if unsealed."""
    local = spool_root / session_id / DATA_KEY_FILE
    if manifest is not None and "sealing" in manifest:
        try:
            return store.get_json(manifest["sealing"].get("data_key") or data_key_key(session_id))
        except NotFoundError:
            if not local.exists():
                raise KeyUnavailableError(f"the wrapped data key of session {session_id} is missing from the "
                                          "store", manifest["sealing"].get("data_key_id", "?")) from None
    if local.exists():
        return json.loads(local.read_text())
    return None


def iter_recording(store: ObjectStore, spool_root: Path, session_id: str,
                   keyring: KeyRing | None = None) -> Iterator[bytes]:
    """Uploaded segments from the store, then what is still only in the spool, in order."""
    manifest = load_manifest(store, session_id)
    local = spool_root / session_id
    if manifest is None and not local.is_dir():
        raise NotFoundError(f"no recording for session {session_id}")
    envelope = load_envelope(store, spool_root, session_id, manifest)
    records = None
    if envelope is not None:
        if keyring is None:
            raise KeyUnavailableError(f"session {session_id} is sealed and no key ring was given to read it",
                                      envelope.get("kek_id", "?"))
        records = data_key_records(keyring, envelope)
    uploaded = set()
    chain = genesis(session_id)
    expected_index = 1
    for segment in (manifest or {}).get("segments", []):
        index = segment["index"]
        uploaded.add(index)
        if records is None:
            yield from store.iter_bytes(segment["key"])
            continue
        if index != expected_index:
            raise TamperedError(f"segment {expected_index:06d} of session {session_id} is missing from its "
                                "manifest", session_id, expected_index)
        try:
            data = store.get_bytes(segment["key"])
        except NotFoundError:
            raise TamperedError(f"segment {index:06d} of session {session_id} is missing from the store",
                                session_id, index) from None
        yield from open_segment(records, index, data, segment, chain)
        chain, expected_index = segment["chain"], index + 1
    if local.is_dir():
        for path in sorted(local.glob("*.guac")) + sorted(local.glob("*.part")):
            index = int(path.stem)
            if index in uploaded:
                continue
            data = path.read_bytes()
            if records is None:
                yield data
            else:
                yield from open_segment(records, index, data, allow_torn_tail=path.suffix == ".part")


def read_spool(session_dir: Path, keyring: KeyRing | None = None) -> bytes:
    """What a session's spool directory holds, decrypted, in segment order (sealed and open segments alike).

    An open segment may end in a record only partly written (a full disk): it was never acknowledged, so
    it is left out, exactly as recovery will cut it off.
    """
    envelope_path = session_dir / DATA_KEY_FILE
    records = None
    if envelope_path.exists():
        if keyring is None:
            raise KeyUnavailableError(f"{session_dir} is sealed and no key ring was given to read it", "?")
        records = data_key_records(keyring, json.loads(envelope_path.read_text()))
    parts = sorted((p for p in session_dir.iterdir() if p.suffix in (".guac", ".part")), key=lambda p: int(p.stem))
    out = []
    for path in parts:
        data = path.read_bytes()
        out.extend([data] if records is None else
                   open_segment(records, int(path.stem), data, allow_torn_tail=path.suffix == ".part"))
    return b"".join(out)


def media_sealer(store: ObjectStore, spool_root: Path, session_id: str, keyring: KeyRing | None):
    """The ``ObjectSealer`` of a sealed session's rendered media (its data key), None for an unsealed one."""
    from gui_recorder.sealing.objects import ObjectSealer

    envelope = load_envelope(store, spool_root, session_id, load_manifest(store, session_id))
    if envelope is None:
        return None
    if keyring is None:
        raise KeyUnavailableError(f"session {session_id} is sealed and no key ring was given to read it",
                                  envelope.get("kek_id", "?"))
    return ObjectSealer(session_id, keyring.open(envelope))
