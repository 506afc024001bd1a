"""User management (the domain; routes in ``users_api``, commands in ``cli``): accounts, their groups and scopes.

An account is local (a password hashed here, ``accounts``) or external
(``ldap``/``oidc``: no usable password here; the identity layer calls
``provision_external_user`` at each sign-in with what the directory or the
provider said). Admins create, disable, delete, reset and re-role accounts;
every change is audited by the caller, who knows who asked and from where.

Rules kept here, whoever calls:

- an external sign-in never takes over a local account of the same name (nor
  one from the other directory), and never re-enables a disabled account
  (both refused with ``ForbiddenError``);
- disabling or deleting an account revokes its sign-ins and unused tunnel
  tokens at once (the gateway also ends its live sessions: ``users_api``);
- the last enabled admin cannot be disabled, deleted or given another role:
  nobody could manage accounts any more;
- deleting an account keeps its sessions (``Session.user_id`` becomes null,
  the copied username stays): recordings are evidence.

No FastAPI here.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import delete, func, select

from gui_recorder.db import AuthToken, Database, Group, GroupMember, TunnelToken, User
from gui_recorder.errors import AccountError, ConflictError, ForbiddenError, NotFoundError
from gui_recorder.gateway import audit
from gui_recorder.gateway.accounts import _hashing
from gui_recorder.gateway.passwords import check_password
from gui_recorder.vocabulary import ROLES, TAG_PATTERN, USER_SOURCES, Role, UserSource

# Directory and provider names may carry dots and @ (``jane.doe@example.org``).
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$"
MAX_GROUPS = 200
MAX_TAGS = 50
# What an external account stores as its hash: argon2 cannot verify it, so no password ever opens it.
NO_PASSWORD = "!external"
_USERNAME, _GROUP, _TAG = re.compile(USERNAME_PATTERN), re.compile(GROUP_PATTERN), re.compile(TAG_PATTERN)


class UserOut(BaseModel):
    username: str
    role: str
    source: str
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None
    groups: list[str]
    scope_tags: list[str]  # the account's own
    oversees: list[str]  # its own and its groups' scope tags (``scope``); empty: every session


def _check_name(username: str) -> None:
    if not _USERNAME.match(username):
        raise AccountError(f"{username[:70]!r} is not a valid username: letters, digits and . _ @ -, "
                                  "at most 64, starting with a letter or digit")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_tags(tags: list[str]) -> list[str]:
    """Tags as stored: lower-case words with dashes, unique, sorted (``finance``, ``vendor-acme``)."""
    if len(tags) > MAX_TAGS:
        raise AccountError(f"at most {MAX_TAGS} tags")
    for tag in tags:
        if not _TAG.match(tag):
            raise AccountError(f"{tag[:70]!r} is not a tag: lower-case letters, digits and dashes")
    return sorted(set(tags))


def _check_group_names(groups: list[str]) -> list[str]:
    if len(groups) > MAX_GROUPS:
        raise AccountError(f"at most {MAX_GROUPS} groups per account")
    for name in groups:
        if not _GROUP.match(name):
            raise AccountError(f"{name[:70]!r} is not a group name")
    return sorted(set(groups))


def _find(s, username: str) -> User:
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def _groups_of(s, user_ids: list[int]) -> dict[int, list[tuple[str, list[str]]]]:
    """Each user's groups: (name, scope tags), by name."""
    out: dict[int, list[tuple[str, list[str]]]] = {uid: [] for uid in user_ids}
    rows = s.execute(select(GroupMember.user_id, Group.name, Group.scope_tags)
                     .join(Group, Group.id == GroupMember.group_id)
                     .where(GroupMember.user_id.in_(user_ids)).order_by(Group.name))
    for uid, name, tags in rows:
        out[uid].append((name, list(tags or [])))
    return out


def _names(groups: list[tuple[str, list[str]]]) -> list[str]:
    return [name for name, _ in groups]


def _out(user: User, groups: list[tuple[str, list[str]]]) -> UserOut:
    own = list(user.scope_tags or [])
    return UserOut(username=user.username, role=user.role, source=user.source or UserSource.LOCAL,
                   disabled=bool(user.disabled), created_at=user.created_at, last_sign_in_at=user.last_sign_in_at,
                   groups=_names(groups), scope_tags=own,
                   oversees=sorted(set(own).union(*(tags for _, tags in groups))))


def list_users(db: Database) -> list[UserOut]:
    with db.session() as s:
        users = list(s.scalars(select(User).order_by(User.username)))
        groups = _groups_of(s, [u.id for u in users])
        return [_out(u, groups[u.id]) for u in users]


def get_user(db: Database, username: str) -> UserOut:
    with db.session() as s:
        user = _find(s, username)
        return _out(user, _groups_of(s, [user.id])[user.id])


def _set_groups(s, db: Database, user: User, groups: list[str]) -> None:
    """Exactly these groups for ``user``; groups that do not exist yet are created (an LDAP/OIDC group)."""
    wanted = {}
    for name in groups:
        group = s.scalar(select(Group).where(Group.name == name))
        if group is None:
            group = Group(name=name, description="", scope_tags=[], created_at=db.now())
            s.add(group)
            s.flush()
        wanted[group.id] = group
    s.execute(delete(GroupMember).where(GroupMember.user_id == user.id,
                                        GroupMember.group_id.not_in(list(wanted) or [-1])))
    have = set(s.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user.id)))
    for gid in set(wanted) - have:
        s.add(GroupMember(group_id=gid, user_id=user.id))


def _revoke(s, user: User) -> None:
    """Every sign-in and every unused tunnel token of ``user`` stop working now."""
    s.execute(delete(AuthToken).where(AuthToken.user_id == user.id))
    s.execute(delete(TunnelToken).where(TunnelToken.user_id == user.id, TunnelToken.used_at.is_(None)))


def _other_enabled_admins(s, user: User) -> int:
    return s.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN, User.disabled.is_(False), User.id != user.id)) or 0


def _keep_an_admin(s, user: User, doing: str) -> None:
    if user.role == Role.ADMIN and not user.disabled and _other_enabled_admins(s, user) == 0:
        raise ConflictError(f"cannot {doing} {user.username!r}: it is the last enabled admin; make another "
                            "admin first")


def create_user(db: Database, username: str, role: str, *, source: str = UserSource.LOCAL,
                password: str | None = None, groups: list[str] = (), min_length: int = 12) -> UserOut:
    """A new account: local ones need a password that passes the policy; external ones take none."""
    _check_name(username)
    _check_role(role)
    if source not in USER_SOURCES:
        raise AccountError(f"source must be one of {', '.join(USER_SOURCES)}, not {source!r}")
    groups = _check_group_names(list(groups))
    if source == UserSource.LOCAL:
        if password is None:
            raise AccountError("a local account needs a password")
        check_password(password, username, min_length)
        password_hash = _hashing(db)[0].hash(password)
    else:
        if password is not None:
            raise AccountError(f"an {source} account signs in with its {source} password: give none here")
        password_hash = NO_PASSWORD
    with db.session() as s:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise ConflictError(f"a user {username!r} already exists")
        user = User(username=username, password_hash=password_hash, role=role, disabled=False,
                    created_at=db.now(), source=source, last_sign_in_at=None, scope_tags=[])
        s.add(user)
        s.flush()
        _set_groups(s, db, user, groups)
        s.flush()
        return _out(user, _groups_of(s, [user.id])[user.id])


def provision_external_user(db: Database, username: str, *, source: str, role: str,
                            groups: list[str]) -> User:
    """Create or update the account a directory (LDAP) or provider (OIDC) user signs in as.

    Called by the identity layer at every external sign-in, with the role and
    groups their mapping gives: the role is set, the group membership becomes
    exactly ``groups`` (a user removed from a directory group loses it at the
    next sign-in; groups not known yet are created). A disabled account is
    refused here (``ForbiddenError``, nothing changed), and again by
    ``tokens.issue_login_token``, the one place every sign-in method passes.
    A local account (or one of the other source) of the same name is never
    taken over: ``ForbiddenError``. (The identity layer's login routes turn
    a ForbiddenError into ``auth.login_refused``.)
    """
    if source not in USER_SOURCES or source == UserSource.LOCAL:
        raise AccountError(f"an external account's source is one of "
                                  f"{', '.join(s for s in USER_SOURCES if s != UserSource.LOCAL)}, not {source!r}")
    _check_name(username)
    _check_role(role)
    groups = _check_group_names(list(groups))
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        before = None
        if user is None:
            user = User(username=username, password_hash=NO_PASSWORD, role=role, disabled=False,
                        created_at=db.now(), source=source, last_sign_in_at=None, scope_tags=[])
            s.add(user)
        elif (user.source or UserSource.LOCAL) != source:
            raise ForbiddenError(f"the account {username!r} exists here as a {user.source or UserSource.LOCAL} "
                                 f"account; an {source} sign-in does not take it over (ask an administrator)")
        elif user.disabled:
            raise ForbiddenError(f"the account {username!r} is disabled here; ask an administrator")
        else:
            if user.role != role and user.role == Role.ADMIN:
                _keep_an_admin(s, user, "take the admin role from")
            before = (user.role, _names(_groups_of(s, [user.id])[user.id]))
            user.role = role
        s.flush()
        _set_groups(s, db, user, groups)
        s.flush()
    # What the directory changed is audited here, whoever called: the sign-in's own event says who signed in.
    if before != (role, groups):
        audit.record_event(db, None, "user.provision", username, None,
                           {"source": source, "role": role, "groups": groups, "created": before is None,
                            **({"was": {"role": before[0], "groups": before[1]}} if before else {})})
    return user


def set_disabled(db: Database, username: str, disabled: bool) -> UserOut:
    """Disable (sign-ins and tunnel tokens revoked here; live sessions ended by the caller) or enable."""
    with db.session() as s:
        user = _find(s, username)
        if disabled:
            _keep_an_admin(s, user, "disable")
            _revoke(s, user)
        user.disabled = disabled
        s.flush()
        return _out(user, _groups_of(s, [user.id])[user.id])


def delete_user(db: Database, username: str) -> int:
    """Delete the account (its sessions stay, under its name); returns its former id for the caller."""
    with db.session() as s:
        user = _find(s, username)
        _keep_an_admin(s, user, "delete")
        user_id = user.id
        _revoke(s, user)
        s.delete(user)
    return user_id


def reset_password(db: Database, username: str, password: str, min_length: int) -> UserOut:
    """A new password for a local account; its current sign-ins end (whoever knew the old one is out)."""
    with db.session() as s:
        user = _find(s, username)
        if (user.source or UserSource.LOCAL) != UserSource.LOCAL:
            raise ConflictError(f"{username!r} is an {user.source} account: its password is kept by the "
                                f"{user.source} side, not here")
        check_password(password, username, min_length)
        user.password_hash = _hashing(db)[0].hash(password)
        _revoke(s, user)
        s.flush()
        return _out(user, _groups_of(s, [user.id])[user.id])


def set_role(db: Database, username: str, role: str) -> UserOut:
    _check_role(role)
    with db.session() as s:
        user = _find(s, username)
        if user.role != role:
            _keep_an_admin(s, user, "take the admin role from")
        user.role = role
        s.flush()
        return _out(user, _groups_of(s, [user.id])[user.id])


def set_user_groups(db: Database, username: str, groups: list[str]) -> UserOut:
    groups = _check_group_names(groups)
    with db.session() as s:
        user = _find(s, username)
        missing = [g for g in groups if s.scalar(select(Group.id).where(Group.name == g)) is None]
        if missing:
            raise NotFoundError(f"no group {', '.join(map(repr, missing))}; create it first")
        _set_groups(s, db, user, groups)
        s.flush()
        return _out(user, _groups_of(s, [user.id])[user.id])


def set_scope(db: Database, username: str, tags: list[str]) -> UserOut:
    """The tags this account's oversight is limited to; empty: no limit (``scope``)."""
    tags = check_tags(tags)
    with db.session() as s:
        user = _find(s, username)
        user.scope_tags = tags
        s.flush()
        return _out(user, _groups_of(s, [user.id])[user.id])
