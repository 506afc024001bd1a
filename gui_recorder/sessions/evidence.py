"""The evidence bundle of one session: everything an outside reviewer needs, checkable without us.

One zip: the recording exactly as stored, its manifest, the video if rendered,
the text timeline if indexed, the files transferred in the session if its
connection keeps them (``files/<sha256>``), the session's facts and reviews, and SHA256SUMS
over all of it, so a third party can check integrity with `sha256sum -c`.
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
from gui_recorder.recording.reader import iter_recording
from gui_recorder.sessions.rows import reviews_of, session_out
from gui_recorder.storage.keys import file_key, manifest_key
from gui_recorder.storage.tiering import TieredStore


def build_bundle(db: Database, store: TieredStore, spool_root: Path, session_id: str, target: Path,
                 timeline: Callable[[str], list[dict]] | None = None) -> None:
    """Write the bundle of ``session_id`` to ``target``; ``timeline`` gives its text timeline, if indexed."""
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
        add(zf, "recording.guac", iter_recording(store, spool_root, session_id))
        try:
            add(zf, "manifest.json", [store.get_bytes(manifest_key(session_id))])
        except NotFoundError:
            pass
        video = (row.video or {}).get("video_key")
        if video:
            add(zf, "video.webm", store.iter_bytes(video))
        for key in _file_keys(store, session_id):
            add(zf, "files/" + key.rsplit("/", 1)[1], store.iter_bytes(key))
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
