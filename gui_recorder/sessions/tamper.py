"""A sealed recording that failed its checks while being served or rendered (issue 13).

It is a security event, not a glitch: the session is marked ``tampered`` (its
reason names the first bad segment and what it was before), an audit event is
written, and the reader has already stopped before the bad segment, so the
recording is never passed on as if whole.
"""

from __future__ import annotations

import logging

from gui_recorder.db import AuditEvent, Database, Session
from gui_recorder.errors import TamperedError
from gui_recorder.vocabulary import SessionStatus

log = logging.getLogger(__name__)
ACTION = "recording.tampered"


def mark_tampered(db: Database, session_id: str, exc: TamperedError, where: str, by: str | None = None,
                  client_addr: str | None = None) -> None:
    """Record that ``where`` (serving, rendering, export...) met a tampered recording of ``session_id``."""
    log.error("SECURITY: the sealed recording of session %s failed its checks while %s: %s", session_id, where, exc)
    with db.session() as s:
        row = s.get(Session, session_id)
        if row is not None and row.status != SessionStatus.TAMPERED:
            row.end_reason = f"recording tampered: {exc} (was {row.status}: {row.end_reason or ''})"
            row.status = SessionStatus.TAMPERED
        s.add(AuditEvent(at=db.now(), username=by, action=ACTION, target=session_id, client_addr=client_addr,
                         detail={"while": where, "segment": exc.segment, "error": str(exc)}))
