"""Login tokens and one-time tunnel tokens. Only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from gui_recorder.db import AuthToken, Connection, Database, TunnelToken, User
from gui_recorder.errors import AuthError, ForbiddenError

COOKIE_NAME = "gr_session"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_login_token(db: Database, user: User, ttl_seconds: int, client_addr: str | None) -> str:
    """The sign-in token of ``user``: the one place every sign-in method (password, LDAP, OIDC) ends.

    So the account is read again here: a disabled (or deleted) account gets no token, however its
    password or directory checked out; and the sign-in is stamped (``last_sign_in_at``).
    """
    token = secrets.token_urlsafe(32)
    now = db.now()
    with db.session() as s:
        current = s.get(User, user.id)
        if current is None or current.disabled:
            raise AuthError("this account is disabled; ask an administrator")
        current.last_sign_in_at = now
        # Sign-ins are rare next to requests: a good moment to forget expired tokens of both kinds.
        s.execute(delete(AuthToken).where(AuthToken.expires_at <= now))
        s.execute(delete(TunnelToken).where(TunnelToken.expires_at <= now - timedelta(days=1)))
        s.add(AuthToken(token_hash=_digest(token), user_id=user.id, created_at=now,
                        expires_at=now + timedelta(seconds=ttl_seconds), client_addr=client_addr))
    return token


def user_for_token(db: Database, token: str | None) -> User:
    if not token:
        raise AuthError("not signed in")
    with db.session() as s:
        row = s.execute(select(AuthToken, User).join(User, User.id == AuthToken.user_id)
                        .where(AuthToken.token_hash == _digest(token))).first()
    if row is None or row.AuthToken.expires_at <= db.now() or row.User.disabled:
        raise AuthError("the sign-in has expired or is not valid; sign in again")
    return row.User


def revoke_login_token(db: Database, token: str) -> None:
    with db.session() as s:
        s.query(AuthToken).filter(AuthToken.token_hash == _digest(token)).delete()


def issue_tunnel_token(db: Database, user: User, connection: Connection, ttl_seconds: int) -> str:
    token = secrets.token_urlsafe(32)
    now = db.now()
    with db.session() as s:
        s.add(TunnelToken(token_hash=_digest(token), user_id=user.id, connection_id=connection.id,
                          created_at=now, expires_at=now + timedelta(seconds=ttl_seconds), used_at=None))
    return token


def consume_tunnel_token(db: Database, token: str | None, cookie_token: str | None = None
                         ) -> tuple[User, Connection]:
    """Use a tunnel token exactly once. Called before anything talks to guacd.

    When the browser also presents a sign-in cookie, it must belong to the
    token's owner: a token copied into another user's browser opens nothing.
    """
    if not token:
        raise AuthError("the tunnel token is missing")
    digest, now = _digest(token), db.now()
    with db.session() as s:
        # One UPDATE marks it used only if unused and unexpired: two racing tunnels cannot both win.
        claimed = s.execute(update(TunnelToken)
                            .where(TunnelToken.token_hash == digest, TunnelToken.used_at.is_(None),
                                   TunnelToken.expires_at > now)
                            .values(used_at=now)).rowcount
        row = s.scalar(select(TunnelToken).where(TunnelToken.token_hash == digest))
        if not claimed:
            if row is None:
                raise AuthError("the tunnel token is not valid")
            if row.used_at is not None:
                raise AuthError("the tunnel token was already used")
            raise AuthError("the tunnel token has expired")
        user = s.get(User, row.user_id)
        connection = s.get(Connection, row.connection_id)
    if user is None or user.disabled or connection is None:
        raise AuthError("the tunnel token's user or connection no longer exists")
    if cookie_token:
        try:
            holder = user_for_token(db, cookie_token)
        except AuthError:
            holder = None
        if holder is not None and holder.id != user.id:
            raise ForbiddenError("this tunnel token belongs to another user")
    return user, connection
