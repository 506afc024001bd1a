"""The local row of an account whose password lives elsewhere (a directory, an SSO provider).

Each sign-in through the directory or the provider ends here with the role its groups map to now:
the row is created at the first sign-in and its role and groups replaced at every one after, so a
change in the directory takes effect at the next sign-in.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from gui_recorder.db import AuthToken, Database, User
from gui_recorder.errors import ConfigError, ForbiddenError
from gui_recorder.vocabulary import ROLES

LOCAL, LDAP, OIDC = "local", "ldap", "oidc"
SOURCES = (LOCAL, LDAP, OIDC)
# Not an argon2 hash: a local sign-in of an external account always fails verification.
NO_PASSWORD = "!external"


# seam: replaced by accounts' users.provision_external_user at merge
def provision_external_user(db: Database, username: str, *, source: str, role: str,
                            groups: list[str]) -> User:
    if source not in SOURCES or source == LOCAL:
        raise ConfigError(f"an external account's source is one of {SOURCES[1:]}, not {source!r}")
    if role not in ROLES:
        raise ConfigError(f"role must be one of {ROLES}, not {role!r}")
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, password_hash=NO_PASSWORD, role=role, disabled=False,
                        created_at=db.now(), source=source, external_groups=list(groups))
            s.add(user)
        elif user.source != source:
            # Never let a directory or provider account take over a local one (or the other's) by name.
            raise ForbiddenError(f"the account {username!r} exists here as a {user.source} account; "
                                 "ask an administrator to rename one of them")
        elif user.disabled:
            raise ForbiddenError(f"the account {username!r} is disabled here; ask an administrator")
        else:
            user.role, user.external_groups = role, list(groups)
        s.flush()
        return user


def find(db: Database, username: str) -> User | None:
    with db.session() as s:
        return s.scalar(select(User).where(User.username == username))


def end_sign_ins(db: Database, user_id: int) -> None:
    """An external account that lost its mapped group: its sign-ins in force end too."""
    with db.session() as s:
        s.execute(delete(AuthToken).where(AuthToken.user_id == user_id))
