"""Import a directory of guacd-native recordings as ended sessions: stored, then given their rows.

``recording.importer`` reads and stores each file; this writes its session row
and hands the session on (``on_imported``: the CLI queues render and index).
Idempotent: a file already imported (same SHA-256) is reported ``already``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gui_recorder.db import Database, Session
from gui_recorder.recording.importer import Imported, ImportedSession, store_file
from gui_recorder.storage import ObjectStore
from gui_recorder.vocabulary import SessionStatus


def _known(db: Database) -> Callable[[str], bool]:
    def known(session_id: str) -> bool:
        with db.session() as s:
            return s.get(Session, session_id) is not None
    return known


def add_imported(db: Database, facts: ImportedSession) -> None:
    with db.session() as s:
        s.add(Session(id=facts.session_id, user_id=None, username=facts.user, connection_id=facts.connection,
                      connection_name=facts.connection, protocol=facts.protocol, client_addr=None,
                      started_at=facts.started_at, ended_at=facts.ended_at, status=SessionStatus.ENDED,
                      bytes_to_client=facts.bytes, bytes_from_client=0, end_reason=facts.end_reason,
                      recording=facts.recording, recording_complete=True, wall_start=facts.wall_start_ms))


def import_file(db: Database, store: ObjectStore, path: Path, sealing=None) -> Imported:
    """``sealing``: the gateway's ``SealingKeys``, so the import is sealed like a live recording."""
    result = store_file(store, path, _known(db), sealing)
    if result.session is not None:
        add_imported(db, result.session)
    return result


def import_directory(db: Database, store: ObjectStore, directory: Path,
                     on_imported: Callable[[str], None] | None = None, sealing=None) -> list[Imported]:
    results = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(".json")):
        result = import_file(db, store, path, sealing)
        results.append(result)
        if result.status == "imported" and on_imported:
            on_imported(result.session_id)
    return results
