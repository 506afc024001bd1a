"""``forget_session``: the one way a session is deleted. Deleted means forgotten (issue 10).

Whether its retention expired (the worker's lifecycle job) or an admin deleted
it (``DELETE /api/sessions/{id}``), it removes the objects in every tier
(recording, manifest, rendered media) and the index documents, clears the keys
from the row and audits who did it and why. Every step is idempotent and the
row is marked last, so a failure half-way leaves a session that the next run
(or the next request) forgets completely.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select

from gui_recorder.db import Database, Session
from gui_recorder.db.models import AuditEvent, Job
from gui_recorder.errors import ConflictError, NotFoundError
from gui_recorder.storage.tiering import Tiering
from gui_recorder.vocabulary import SessionStatus, Tier

log = logging.getLogger(__name__)

RETENTION_REASON = "retention expired"


class TextIndex(Protocol):
    """What forgetting needs of the search index (``gui_recorder.index.SearchIndex``)."""

    def delete_session(self, session_id: str) -> int: ...


@dataclass(frozen=True)
class Forgotten:
    session_id: str
    objects: int  # objects deleted from the buckets (both tiers)
    documents: int  # index documents deleted (typed and screen text)


def forget_session(db: Database, tiering: Tiering, index: TextIndex, session_id: str, *, by: str | None,
                   reason: str, action: str = "session.delete", client_addr: str | None = None,
                   spool_root: Path | None = None) -> Forgotten:
    """Delete everything of one session and leave an audit event; ``by`` is None for the lifecycle job.

    Raises ``NotFoundError`` (no such session), ``ConflictError`` (legal hold, still live,
    its recording still in ``spool_root`` waiting for upload, or a render/index job
    writing its outputs right now), ``StorageError`` and ``DatabaseError`` (nothing is
    marked deleted then; calling again finishes the work).
    """
    with db.session() as s:
        row = s.get(Session, session_id)
        if row is None:
            raise NotFoundError(f"no session {session_id}")
        if row.legal_hold:
            raise ConflictError(f"session {session_id} is under legal hold and cannot be deleted; "
                                "release the hold first")
        if row.status == SessionStatus.ACTIVE:
            raise ConflictError(f"session {session_id} is still live; end it before deleting it")
        if _in_spool(spool_root, session_id):
            # The uploader would write it back after the deletion: wait until it is stored.
            raise ConflictError(f"the recording of session {session_id} is still being uploaded; "
                                "try again once it is stored")
        now = db.now()
        running = s.scalar(select(Job.kind).where(Job.session_id == session_id, Job.state == "running",
                                                  Job.lease_until >= now).limit(1))
        if running:
            raise ConflictError(f"a {running} job is writing outputs of session {session_id} right now; "
                                "try again when it is done (a minute or so)")
        # Queued work (or a dead worker's lapsed lease) would bring media or text back after
        # the deletion: it is dropped, not failed, so no failure alert fires for it.
        s.execute(delete(Job).where(Job.session_id == session_id, Job.state.in_(("queued", "running"))))
    objects = tiering.delete_session(session_id)
    documents = index.delete_session(session_id)
    with db.session() as s:
        row = s.get(Session, session_id)
        if row is not None:
            recording = row.recording or {}
            row.tier = Tier.DELETED
            # Keys and checksums go (they name what no longer exists); the figures stay for the
            # capacity statistics.
            row.recording = {k: recording[k] for k in ("bytes", "duration_ms") if k in recording}
            row.video = {}
        s.add(AuditEvent(at=db.now(), username=by, action=action, target=session_id, client_addr=client_addr,
                         detail={"reason": reason, "objects": objects, "documents": documents}))
    log.info("session %s forgotten (%s): %d objects, %d index documents", session_id, reason, objects, documents)
    return Forgotten(session_id, objects, documents)


def _in_spool(spool_root: Path | None, session_id: str) -> bool:
    """Whether this host's spool still holds the session (the uploader removes it once stored)."""
    if spool_root is None or Path(session_id).name != session_id:
        return False  # an id that is not one path component is never a spool directory
    return (Path(spool_root) / session_id).is_dir()
