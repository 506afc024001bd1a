"""One-time watch tokens: an auditor's permission to join one live session, for a minute.

Issued by ``POST /api/sessions/{id}/watch-token`` (``live``) after the
capability and visibility checks, consumed by the ``/api/watch`` WebSocket,
which a browser opens without headers of its own.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from gui_recorder.errors import AuthError


@dataclass
class WatchGrant:
    username: str
    session_id: str
    expires: float


class WatchTokens:
    """One-time watch tokens, kept in memory: they live a minute (``watch_token_ttl_seconds``) and a
    restart ends every session anyway."""

    def __init__(self, ttl_seconds: float):
        self.ttl_seconds = ttl_seconds
        self._grants: dict[str, WatchGrant] = {}

    def issue(self, username: str, session_id: str) -> str:
        now = time.monotonic()
        self._grants = {k: g for k, g in self._grants.items() if g.expires > now}
        token = secrets.token_urlsafe(32)
        self._grants[token] = WatchGrant(username, session_id, now + self.ttl_seconds)
        return token

    def consume(self, token: str) -> WatchGrant:
        grant = self._grants.pop(token, None)
        if grant is None or grant.expires <= time.monotonic():
            raise AuthError("the watch token is missing, used or expired")
        return grant

    def revoke_user(self, username: str) -> None:
        """A disabled or deleted account's unused watch tokens open nothing any more."""
        self._grants = {k: g for k, g in self._grants.items() if g.username != username}
