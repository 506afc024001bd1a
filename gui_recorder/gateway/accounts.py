"""Local accounts: argon2 password hashes, one role each; every password set passes the policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from gui_recorder.db import ROLES, Database, User
from gui_recorder.errors import AuthError, ConfigError, PasswordPolicyError
from gui_recorder.gateway.passwords import check_password
from gui_recorder.settings import Settings

@functools.cache
def hashing(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    """The argon2 hasher for these costs, and a hash it verifies when the user does not exist
    (so that a wrong name costs as long as a wrong password). A stored hash carries its own
    costs: changing the settings never locks anyone out."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    return hasher, hasher.hash("not a password")


def _hashing(db: Database) -> tuple[PasswordHasher, str]:
    return hashing(db.settings.password_hash_time_cost, db.settings.password_hash_memory_kib)


def authenticate(db: Database, username: str, password: str) -> User:
    hasher, dummy = _hashing(db)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    try:
        hasher.verify(user.password_hash if user else dummy, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or user.disabled:
        raise AuthError("incorrect username or password")
    return user


def ensure_user(db: Database, username: str, password: str, role: str, *, min_length: int = 12) -> User:
    """Create the account, or update its role and password (idempotent).

    A password being set (a new account, or a changed password) must pass the
    policy (``passwords.check_password``: PasswordPolicyError, HTTP 422);
    re-ensuring an account with the password it already has sets nothing.
    """
    if role not in ROLES:
        raise ConfigError(f"role must be one of {ROLES}, not {role!r}")
    hasher, _ = _hashing(db)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            check_password(password, username, min_length)
            user = User(username=username, password_hash=hasher.hash(password), role=role, disabled=False,
                        created_at=db.now())
            s.add(user)
        else:
            try:
                hasher.verify(user.password_hash, password)
            except (VerificationError, InvalidHashError):
                check_password(password, username, min_length)
                user.password_hash = hasher.hash(password)
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
            raise ConfigError("no admin account exists: create one with `gui-recorder user add NAME --role admin` "
                              "(or set GUI_RECORDER_ADMIN_PASSWORD for the first run)")
        try:
            ensure_user(db, settings.admin_username, settings.admin_password.get_secret_value(), "admin",
                        min_length=settings.password_min_length)
        except PasswordPolicyError as exc:
            raise ConfigError(f"GUI_RECORDER_ADMIN_PASSWORD is refused: {exc}") from exc
