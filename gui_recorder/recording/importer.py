"""Import recordings written by guacd itself (`recording-path`): a team's Guacamole history.

Each file becomes an ended session: its duration from the first and last
``sync``; its end from the file's modification time (guacd writes until the
session ends); user, connection and protocol from a sidecar ``<file>.json``
(``{"user": ..., "connection": ..., "protocol": ..., "started_at": ISO-8601}``),
else from a ``user@connection`` prefix of the file name, else "unknown". The
recording is stored like a live one (segments + manifest with SHA-256) and
queued for rendering and indexing. Importing the same file twice does nothing:
the session id is derived from the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gui_recorder.db import Database, Session
from gui_recorder.errors import ProtocolError
from gui_recorder.protocol import Parser
from gui_recorder.recording.manifest import manifest_key, new_manifest, segment_key
from gui_recorder.storage import ObjectStore

log = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("6f1c2a52-4b7e-4c53-9a53-2b8f0f0a9d11")
SEGMENT_BYTES = 1 << 20
NAME_PATTERN = re.compile(r"^(?P<user>[\w.-]+)@(?P<connection>[\w.-]+)")


@dataclass
class Imported:
    path: Path
    session_id: str | None
    status: str  # imported | already | skipped
    detail: str = ""


def _scan(path: Path) -> tuple[str, int | None, int | None, bool, str]:
    """SHA-256, first and last sync timestamps, whether the stream ends cleanly, protocol guess."""
    digest, parser = hashlib.sha256(), Parser()
    first = last = None
    rdp_hint = False
    truncated = False
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            if truncated:
                continue
            try:
                instructions = parser.feed(chunk)
            except ProtocolError:
                truncated = True
                continue
            for ins in instructions:
                if ins[0] == "sync" and len(ins) > 1 and ins[1].lstrip("-").isdigit():
                    ts = int(ins[1])
                    first = ts if first is None else first
                    last = ts
                elif ins[0] == "transfer":
                    rdp_hint = True  # guacd sends raster operations only for RDP
    clean = not truncated and not parser.pending
    return digest.hexdigest(), first, last, clean, "rdp" if rdp_hint else "unknown"


def _describe(path: Path) -> dict:
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists():
        try:
            return json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable sidecar %s: %s", sidecar, exc)
    match = NAME_PATTERN.match(path.name)
    return match.groupdict() if match else {}


def import_file(db: Database, store: ObjectStore, path: Path) -> Imported:
    sha, first, last, clean, protocol = _scan(path)
    if first is None:
        return Imported(path, None, "skipped", "no frame (no sync instruction): not a Guacamole recording")
    session_id = str(uuid.uuid5(NAMESPACE, sha))
    with db.session() as s:
        if s.get(Session, session_id) is not None:
            return Imported(path, session_id, "already")
    about = _describe(path)
    duration_ms = last - first
    ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    started = ended - timedelta(milliseconds=duration_ms)
    if about.get("started_at"):
        started = datetime.fromisoformat(about["started_at"]).astimezone(UTC)
        ended = started + timedelta(milliseconds=duration_ms)
    user, connection = str(about.get("user") or "unknown"), str(about.get("connection") or "unknown")
    protocol = str(about.get("protocol") or protocol)
    meta = {"session_id": session_id, "user": user, "connection": connection, "protocol": protocol,
            "imported_from": path.name, "source_sha256": sha, "first_ts": first, "duration_ms": duration_ms,
            "wall_start_ms": int(started.timestamp() * 1000), "finished": True, "truncated": not clean}
    object_meta = {"session": session_id, "user": user, "connection": connection, "tier": "hot"}
    store.ensure_bucket()
    manifest = new_manifest(session_id, meta)
    with open(path, "rb") as f:
        index = 0
        while data := f.read(SEGMENT_BYTES):
            index += 1
            key = segment_key(session_id, index)
            store.put_bytes(key, data, "application/vnd.guacamole.recording", object_meta)
            manifest["segments"].append({"index": index, "size": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest(), "key": key})
    manifest["bytes"] = sum(seg["size"] for seg in manifest["segments"])
    manifest["complete"] = True
    store.put_json(manifest_key(session_id), manifest, object_meta)
    summary = {"manifest": manifest_key(session_id), "bytes": manifest["bytes"], "duration_ms": duration_ms,
               "segments": [{k: seg[k] for k in ("key", "size", "sha256")} for seg in manifest["segments"]],
               "imported_from": path.name, "source_sha256": sha}
    with db.session() as s:
        s.add(Session(id=session_id, user_id=None, username=user, connection_id=connection,
                      connection_name=connection, protocol=protocol[:8], client_addr=None, started_at=started,
                      ended_at=ended, status="ended", bytes_to_client=manifest["bytes"], bytes_from_client=0,
                      end_reason=f"imported from {path.name}" + ("" if clean else " (truncated recording)"),
                      recording=summary, recording_complete=True, wall_start=meta["wall_start_ms"]))
    return Imported(path, session_id, "imported", "" if clean else "truncated: rendered up to the last whole frame")


def import_directory(db: Database, store: ObjectStore, directory: Path, on_imported=None) -> list[Imported]:
    results = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".json")):
        result = import_file(db, store, path)
        results.append(result)
        if result.status == "imported" and on_imported:
            on_imported(result.session_id)
    return results
