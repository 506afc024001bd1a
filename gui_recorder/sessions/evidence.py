"""The evidence bundle of one session: everything an outside reviewer needs, checkable without us.

One zip: the recording exactly as stored, its manifest, the video if rendered,
the text timeline if indexed, the files transferred in the session if its
connection keeps them (``files/<sha256>``), the session's facts and reviews, and SHA256SUMS
over all of it, so a third party can check integrity with `sha256sum -c`.
A sealed recording (issue 13) adds ``sealed/``: its ciphertext segments as
stored, the signed checkpoints, the public key and a README on verifying them
by hand (``sessions.sealed_bundle``).
Streamed member by member: a long session's recording is never held in memory.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from gui_recorder.db import Database, Session
from gui_recorder.errors import NotFoundError
from gui_recorder.errors import TamperedError
from gui_recorder.recording.reader import iter_recording, load_manifest, media_sealer
from gui_recorder.sealing.objects import HEADER, is_sealed, plain_size
from gui_recorder.sealing.keys import KeyRing, SealingKeys
from gui_recorder.sessions.sealed_bundle import add_sealed
from gui_recorder.sessions.tamper import mark_tampered
from gui_recorder.sessions.rows import reviews_of, session_out
from gui_recorder.storage.keys import file_key, kept_file_name, manifest_key
from gui_recorder.storage.tiering import TieredStore


def _plain(store: TieredStore, spool_root: Path, session_id: str, key: str, name: str, keyring: KeyRing | None):
    """A media object or kept file as it was made: decrypted chunk by chunk when sealed."""
    head = store.get_bytes(key, 0, HEADER)
    if not is_sealed(head):
        return store.iter_bytes(key)
    sealer = media_sealer(store, spool_root, session_id, keyring)
    return sealer.open_range(name, lambda offset, n: store.get_bytes(key, offset, n), plain_size(head))


def build_bundle(db: Database, store: TieredStore, spool_root: Path, session_id: str, target: Path,
                 timeline: Callable[[str], list[dict]] | None = None, sealing: SealingKeys | None = None) -> None:
    """Write the bundle of ``session_id`` to ``target``; ``timeline`` gives its text timeline, if indexed.

    ``sealing``: the gateway's keys (its key ring decrypts; its signer's public key goes in the bundle).
    """
    keyring: KeyRing | None = sealing.keyring if sealing else None
    with db.session() as s:
        row = s.get(Session, session_id)
    if row is None:
        raise NotFoundError(f"no session {session_id}")
    sums: list[str] = []

    def add(zf: zipfile.ZipFile, name: str, chunks) -> None:
        digest = hashlib.sha256()
        with zf.open(name, "w", force_zip64=True) as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        sums.append(f"{digest.hexdigest()}  {name}")

    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        try:
            add(zf, "recording.guac", iter_recording(store, spool_root, session_id, keyring))
        except TamperedError as exc:  # never exported as if whole
            mark_tampered(db, session_id, exc, "exporting its evidence bundle")
            raise
        try:
            add(zf, "manifest.json", [store.get_bytes(manifest_key(session_id))])
        except NotFoundError:
            pass
        manifest = load_manifest(store, session_id)
        if manifest and "sealing" in manifest and sealing is not None:
            add_sealed(add, zf, manifest, lambda key: [store.get_bytes(key)], sealing.signer.public_key)
        try:
            video = (row.video or {}).get("video_key")
            if video:
                add(zf, "video.webm", _plain(store, spool_root, session_id, video, "video.webm", keyring))
            for key in _file_keys(store, session_id):
                name = kept_file_name(key)
                add(zf, name, _plain(store, spool_root, session_id, key, name, keyring))
        except TamperedError as exc:  # never exported as if whole
            mark_tampered(db, session_id, exc, "exporting its evidence bundle")
            raise
        facts = session_out(row, reviews_of(db, session_id)).model_dump(mode="json")
        add(zf, "session.json", [json.dumps(facts, indent=2).encode()])
        if timeline is not None:
            add(zf, "text-timeline.json", [json.dumps(timeline(session_id), indent=2).encode()])
        zf.writestr("SHA256SUMS", "\n".join(sums) + "\n")


def _file_keys(store: TieredStore, session_id: str) -> list[str]:
    """Keys of the session's kept files, in whichever tier holds them (worker/tasks.py stores them)."""
    prefix = file_key(session_id, "")
    keys: set[str] = set()
    for tier in store.tiers:
        if tier.store.bucket_exists():
            keys.update(info.key for info in tier.store.list(prefix))
    return sorted(keys)
