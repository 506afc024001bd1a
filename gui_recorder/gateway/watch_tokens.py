"""One-time watch tokens: an auditor's permission to join one live session, for a minute.

Issued by ``POST /api/sessions/{id}/watch-token`` (``live``) after the
capability and visibility checks, consumed by the ``/api/watch`` WebSocket,
which a browser opens without headers of its own. Kept in the database (only a
SHA-256 of each), like tunnel tokens: behind a load balancer the WebSocket may
reach another gateway than the one that issued the token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from gui_recorder.db import Database
from gui_recorder.db.models import WatchToken
from gui_recorder.errors import AuthError


@dataclass
class WatchGrant:
    username: str
    session_id: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WatchTokens:
    """One-time watch tokens that live ``watch_token_ttl_seconds``."""

    def __init__(self, db: Database, ttl_seconds: float):
        self.db = db
        self.ttl_seconds = ttl_seconds

    def issue(self, username: str, session_id: str) -> str:
        token, now = secrets.token_urlsafe(32), self.db.now()
        with self.db.session() as s:
            s.execute(delete(WatchToken).where(WatchToken.expires_at <= now))
            s.add(WatchToken(token_hash=_digest(token), username=username, session_id=session_id,
                             expires_at=now + timedelta(seconds=self.ttl_seconds)))
        return token

    def consume(self, token: str) -> WatchGrant:
        digest, now = _digest(token or ""), self.db.now()
        with self.db.session() as s:
            # One UPDATE claims it only if unused and unexpired: two racing watchers cannot both win.
            claimed = s.execute(update(WatchToken)
                                .where(WatchToken.token_hash == digest, WatchToken.used_at.is_(None),
                                       WatchToken.expires_at > now)
                                .values(used_at=now)).rowcount
            row = s.scalar(select(WatchToken).where(WatchToken.token_hash == digest))
            if not claimed or row is None:
                raise AuthError("the watch token is missing, used or expired")
            return WatchGrant(row.username, row.session_id)

    def revoke_user(self, username: str) -> None:
        """A disabled or deleted account's unused watch tokens open nothing any more."""
        with self.db.session() as s:
            s.execute(delete(WatchToken).where(WatchToken.username == username, WatchToken.used_at.is_(None)))
