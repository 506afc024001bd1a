"""The consent notice: a connection's text the user accepts before its session starts.

The version is the text's SHA-256 (first 16 hex digits): an edited notice is a
new version, and a client that accepted the old one must accept again.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update

from gui_recorder.db import Database
from gui_recorder.db.models import ConsentAcceptance
from gui_recorder.errors import ForbiddenError


def version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def notice_of(recording_policy: dict | None) -> str | None:
    text = (recording_policy or {}).get("consent_text")
    return text or None


def check(recording_policy: dict | None, accepted_version: str | None, connection_id: str) -> str | None:
    """The notice's version when one is required and accepted; ``ForbiddenError`` when not accepted."""
    text = notice_of(recording_policy)
    if text is None:
        return None
    if accepted_version != version(text):
        raise ForbiddenError(f"the connection {connection_id!r} shows a notice that must be accepted first "
                             f"(GET /api/connections/{connection_id}/consent, then send its version)"
                             + (": the notice has changed since" if accepted_version else ""))
    return version(text)


def record(db: Database, username: str, connection_id: str, text: str, token: str, client_addr: str | None) -> None:
    with db.session() as s:
        s.add(ConsentAcceptance(username=username, connection_id=connection_id, version=version(text), text=text,
                                accepted_at=db.now(), client_addr=client_addr,
                                token_hash=hashlib.sha256(token.encode()).hexdigest()))


def attach(db: Database, token: str, session_id: str) -> None:
    """The tunnel token opened ``session_id``: its acceptance (if any) is now the session's."""
    with db.session() as s:
        s.execute(update(ConsentAcceptance)
                  .where(ConsentAcceptance.token_hash == hashlib.sha256(token.encode()).hexdigest())
                  .values(session_id=session_id))


def for_session(db: Database, session_id: str) -> dict | None:
    with db.session() as s:
        row = s.scalar(select(ConsentAcceptance).where(ConsentAcceptance.session_id == session_id))
    if row is None:
        return None
    return {"user": row.username, "connection_id": row.connection_id, "version": row.version, "text": row.text,
            "accepted_at": row.accepted_at.isoformat(), "client_addr": row.client_addr}
