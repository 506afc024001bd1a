"""The local row of an account whose password lives elsewhere (a directory, an SSO provider).

Each sign-in through the directory or the provider ends here with the role its groups map to now:
the row is created at the first sign-in and its role and groups replaced at every one after, so a
change in the directory takes effect at the next sign-in.
"""

from __future__ import annotations

import re

from sqlalchemy import delete, select

from gui_recorder.db import AuthToken, Database, User
from gui_recorder.gateway import users
from gui_recorder.vocabulary import UserSource

# The sources, from the one vocabulary (names kept for the sign-in modules that read them here).
LOCAL, LDAP, OIDC = UserSource.LOCAL.value, UserSource.LDAP.value, UserSource.OIDC.value


def provision_external_user(db: Database, username: str, *, source: str, role: str,
                            groups: list[str]) -> User:
    """The account's row, made or updated by the users domain (role, group membership, never a takeover of
    another source's account, a disabled one refused), plus the groups as the directory or provider said."""
    local = sorted({name for name in map(_local_group_name, groups) if name})[:users.MAX_GROUPS]
    user = users.provision_external_user(db, username, source=source, role=role, groups=local)
    with db.session() as s:
        row = s.get(User, user.id)
        row.external_groups = list(groups)
        s.flush()
        return row


def _local_group_name(group: str) -> str | None:
    """The local group a directory or provider group becomes: a DN by its first value
    (``cn=gr-admins,ou=groups,...`` is ``gr-admins``), a plain name as it is; None when that is
    no valid local group name (it then grants nothing here, and stays in ``external_groups``)."""
    first = group.split(",", 1)[0]
    name = first.split("=", 1)[1].strip() if "=" in first else group.strip()
    return name if re.fullmatch(users.GROUP_PATTERN, name) else None


def find(db: Database, username: str) -> User | None:
    with db.session() as s:
        return s.scalar(select(User).where(User.username == username))


def end_sign_ins(db: Database, user_id: int) -> None:
    """An external account that lost its mapped group: its sign-ins in force end too."""
    with db.session() as s:
        s.execute(delete(AuthToken).where(AuthToken.user_id == user_id))
