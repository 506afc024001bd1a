"""Checks over sealed recordings as stored: ``gui-recorder verify`` (a session or a bundle) and KEK rotation.

Verification needs no secret: it reads the ciphertext objects (every one under
the session's prefix, in every tier, so an extra one is found too), the
manifest's checkpoints and the public keys given, and hands them to
``sealing.verify``. Rotation rewraps every data key envelope, in the spool and
in every tier, with the current KEK; segments are never read or written.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gui_recorder.errors import NotFoundError
from gui_recorder.recording.sealed import DATA_KEY_FILE
from gui_recorder.recording.spool import write_json_durably
from gui_recorder.sealing.keys import KeyRing
from gui_recorder.sealing.verify import Report, verify_sealed
from gui_recorder.sessions.sealed_bundle import read_sealed
from gui_recorder.storage.keys import manifest_key, session_prefix
from gui_recorder.storage.stores import StorageTier


def _manifest(tiers: list[StorageTier], session_id: str) -> dict:
    for tier in tiers:
        try:
            return tier.store.get_json(manifest_key(session_id))
        except NotFoundError:
            continue
    raise NotFoundError(f"no manifest of session {session_id} in any tier ({', '.join(t.name for t in tiers)})")


def verify_session(tiers: list[StorageTier], session_id: str,
                   public: Ed25519PublicKey | Iterable[Ed25519PublicKey]) -> Report:
    manifest = _manifest(tiers, session_id)
    if "sealing" not in manifest:
        report = Report(session_id)
        report.bad("this recording was stored before sealing: it has no signature to verify")
        return report
    prefix = session_prefix(session_id) + "segments/"
    segments: dict[int, bytes] = {}
    for tier in tiers:
        for info in tier.store.list(prefix):
            name = info.key[len(prefix):]
            if name.endswith(".guac") and name[:-5].isdigit():
                segments[int(name[:-5])] = tier.store.get_bytes(info.key)
    report = verify_sealed(session_id, segments, manifest["sealing"].get("checkpoints", []), public, manifest)
    report.checked.insert(0, f"source: the object store ({len(segments)} segment object(s) found)")
    return report


def verify_bundle(path: Path, public: Ed25519PublicKey | Iterable[Ed25519PublicKey]) -> Report:
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json")) if "manifest.json" in zf.namelist() else None
        segments, checkpoints = read_sealed(zf)
    session_id = (manifest or {}).get("session_id") or "?"
    report = verify_sealed(session_id, segments, checkpoints, public, manifest)
    report.checked.insert(0, f"source: the evidence bundle {path.name}")
    return report


def rotate_kek(tiers: list[StorageTier], spool_root: Path, keyring: KeyRing) -> tuple[int, int]:
    """Rewrap every data key not yet wrapped by the current KEK: (rewrapped, already current)."""
    rewrapped = current = 0
    if spool_root.is_dir():
        for path in sorted(spool_root.glob(f"*/{DATA_KEY_FILE}")):
            new = keyring.rewrap(json.loads(path.read_text()))
            if new is None:
                current += 1
            else:
                write_json_durably(path, new)
                rewrapped += 1
    for tier in tiers:
        for info in tier.store.list("sessions/"):
            if not info.key.endswith("/" + DATA_KEY_FILE):
                continue
            new = keyring.rewrap(tier.store.get_json(info.key))
            if new is None:
                current += 1
                continue
            tier.store.put_json(info.key, new, tier.store.stat(info.key).metadata)
            rewrapped += 1
    return rewrapped, current
