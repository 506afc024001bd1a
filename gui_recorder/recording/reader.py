"""Read a session's recording back as one Guacamole protocol stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gui_recorder.errors import NotFoundError
from gui_recorder.storage.keys import manifest_key
from gui_recorder.storage import ObjectStore


def load_manifest(store: ObjectStore, session_id: str) -> dict | None:
    try:
        return store.get_json(manifest_key(session_id))
    except NotFoundError:
        return None


def iter_recording(store: ObjectStore, spool_root: Path, session_id: str) -> Iterator[bytes]:
    """Uploaded segments from the store, then what is still only in the spool, in order."""
    manifest = load_manifest(store, session_id)
    uploaded = set()
    for segment in (manifest or {}).get("segments", []):
        uploaded.add(segment["index"])
        yield from store.iter_bytes(segment["key"])
    local = spool_root / session_id
    if local.is_dir():
        for path in sorted(local.glob("*.guac")) + sorted(local.glob("*.part")):
            if int(path.stem) not in uploaded:
                yield path.read_bytes()
    elif manifest is None:
        raise NotFoundError(f"no recording for session {session_id}")
