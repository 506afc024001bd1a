"""Import recordings written by guacd itself (`recording-path`): a team's Guacamole history.

Each file becomes an ended session: its duration from the first and last
``sync``; its end from the file's modification time (guacd writes until the
session ends); user, connection and protocol from a sidecar ``<file>.json``
(``{"user": ..., "connection": ..., "protocol": ..., "started_at": ISO-8601}``),
else from a ``user@connection`` prefix of the file name, else "unknown". The
recording is stored like a live one (segments + manifest with SHA-256) and
queued for rendering and indexing. Importing the same file twice does nothing:
the session id is derived from the file's SHA-256. With sealing keys (the CLI
always passes them) it is sealed like a live one (issue 13): encrypted records,
chained segments, a signed final checkpoint (``end imported``).

This module reads and stores recordings; the session rows are written by
``gui_recorder.sessions.imports``, which drives it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol import Parser
from gui_recorder.recording.manifest import new_manifest
from gui_recorder.recording.sealed import sealing_summary
from gui_recorder.sealing.chain import Checkpoint, genesis, link, now_iso
from gui_recorder.sealing.keys import SealingKeys, signed_entry
from gui_recorder.sealing.records import ALGORITHM, RecordSealer
from gui_recorder.storage import ObjectStore
from gui_recorder.storage.keys import data_key_key, manifest_key, segment_key

log = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("6f1c2a52-4b7e-4c53-9a53-2b8f0f0a9d11")
SEGMENT_BYTES = 1 << 20
RECORD_BYTES = 64 << 10  # plaintext per sealed record
NAME_PATTERN = re.compile(r"^(?P<user>[\w.-]+)@(?P<connection>[\w.-]+)")


@dataclass(frozen=True)
class ImportedSession:
    """The facts of an imported recording, for its session row."""

    session_id: str
    user: str
    connection: str
    protocol: str
    started_at: datetime
    ended_at: datetime
    wall_start_ms: int
    bytes: int
    end_reason: str
    recording: dict  # the summary a live session's row gets from the uploader


@dataclass
class Imported:
    path: Path
    session_id: str | None
    status: str  # imported | already | skipped
    detail: str = ""
    session: ImportedSession | None = None  # set when imported


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


def _chunks(path: Path):
    """(chunk, is it the last) of the file, reading one ahead."""
    with open(path, "rb") as f:
        chunk = f.read(SEGMENT_BYTES)
        while chunk:
            following = f.read(SEGMENT_BYTES)
            yield chunk, not following
            chunk = following


def store_file(store: ObjectStore, path: Path, known: Callable[[str], bool],
               sealing: SealingKeys | None = None) -> Imported:
    """Store one recording file's segments and manifest; ``known(session_id)`` says it is already imported."""
    sha, first, last, clean, protocol = _scan(path)
    if first is None:
        return Imported(path, None, "skipped", "no frame (no sync instruction): not a Guacamole recording")
    session_id = str(uuid.uuid5(NAMESPACE, sha))
    if known(session_id):
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
    object_meta = {"session": session_id, "user": user, "connection": connection, "tier": store.tier}
    store.ensure_bucket()
    manifest = new_manifest(session_id, meta)
    records = envelope = None
    chain = genesis(session_id)
    if sealing is not None:
        data_key = sealing.keyring.new_data_key(session_id)
        envelope, records = data_key.envelope, RecordSealer(session_id, data_key.key)
        store.put_json(data_key_key(session_id), envelope, object_meta)
    for index, (chunk, last) in enumerate(_chunks(path), 1):
        data, extra = chunk, {}
        if records is not None:
            pieces = [chunk[i:i + RECORD_BYTES] for i in range(0, len(chunk), RECORD_BYTES)]
            data = b"".join(records.seal(index, n, piece, last and n == len(pieces) - 1)
                            for n, piece in enumerate(pieces))
            chain = link(chain, index, hashlib.sha256(data).hexdigest())
            extra = {"chain": chain, "records": len(pieces), "plain_size": len(chunk)}
        key = segment_key(session_id, index)
        store.put_bytes(key, data, "application/vnd.guacamole.recording", object_meta)
        manifest["segments"].append({"index": index, "size": len(data),
                                     "sha256": hashlib.sha256(data).hexdigest(), "key": key, **extra})
    manifest["bytes"] = sum(seg["size"] for seg in manifest["segments"])
    manifest["complete"] = True
    if records is not None:
        signer = sealing.signer
        text = Checkpoint(session_id, chain, True, "imported", now_iso(), signer.key_id, envelope["data_key_id"],
                          ALGORITHM, [(s["index"], s["sha256"]) for s in manifest["segments"]]).text()
        checkpoints = [signed_entry(signer, text)]
        manifest["sealing"] = {**sealing_summary(envelope, checkpoints, signer.key_id),
                               "data_key": data_key_key(session_id)}
    store.put_json(manifest_key(session_id), manifest, object_meta)
    summary = {"manifest": manifest_key(session_id), "bytes": manifest["bytes"], "duration_ms": duration_ms,
               "segments": [{k: seg[k] for k in ("key", "size", "sha256")} for seg in manifest["segments"]],
               "imported_from": path.name, "source_sha256": sha}
    row = ImportedSession(session_id, user, connection, protocol[:8], started, ended, meta["wall_start_ms"],
                          manifest["bytes"], f"imported from {path.name}" + ("" if clean else " (truncated recording)"),
                          summary)
    return Imported(path, session_id, "imported", "" if clean else "truncated: rendered up to the last whole frame",
                    row)
