"""Local accounts: argon2 password hashes, one role each."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from gui_recorder.db import ROLES, Database, User
from gui_recorder.errors import AuthError, ConfigError
from gui_recorder.settings import Settings

_hasher = PasswordHasher()
# Verified when the user does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def authenticate(db: Database, username: str, password: str) -> User:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or user.disabled:
        raise AuthError("incorrect username or password")
    return user


def ensure_user(db: Database, username: str, password: str, role: str) -> User:
    """Create the account, or update its role and password (idempotent)."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {ROLES}, not {role!r}")
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, password_hash=hash_password(password), role=role, disabled=False,
                        created_at=db.now())
            s.add(user)
        else:
            try:
                _hasher.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError):
                user.password_hash = hash_password(password)
            user.role = role
            user.disabled = False
        s.flush()
        return user


def seed_admin(db: Database, settings: Settings) -> None:
    """First run: an admin from the configuration, if there is none yet."""
    with db.session() as s:
        has_admin = s.scalar(select(User.id).where(User.role == "admin").limit(1)) is not None
    if not has_admin:
        if settings.admin_password is None:
            raise ConfigError("no admin account exists: set GUI_RECORDER_ADMIN_PASSWORD for the first run")
        ensure_user(db, settings.admin_username, settings.admin_password.get_secret_value(), "admin")
