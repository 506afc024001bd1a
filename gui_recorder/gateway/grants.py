"""Grants: a user or a group may open a connection, or every connection carrying a tag (the domain).

Who may open a connection (``may_open``): whoever holds ``connection.admin``;
users and roles named on the connection itself (``allowed_users``,
``allowed_roles``: the older, per-connection form the demo seeds use); and the
grants here: to the user or to any group of theirs, of the connection or of
one of its tags. Routes in ``users_api``; no FastAPI here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import or_, select

from gui_recorder.db import Connection, Database, Grant, Group, GroupMember, User
from gui_recorder.errors import ConflictError, ForbiddenError, NotFoundError
from gui_recorder.gateway import connections
from gui_recorder.gateway.users import TAG_PATTERN


class GrantIn(BaseModel):
    """Exactly one of ``user``/``group``, and exactly one of ``connection``/``tag``."""

    user: str | None = Field(None, max_length=64)
    group: str | None = Field(None, max_length=64)
    connection: str | None = Field(None, max_length=64)
    tag: str | None = Field(None, pattern=TAG_PATTERN)

    @model_validator(mode="after")
    def _one_of_each(self) -> "GrantIn":
        if (self.user is None) == (self.group is None):
            raise ValueError("give exactly one of user and group")
        if (self.connection is None) == (self.tag is None):
            raise ValueError("give exactly one of connection and tag")
        return self


class GrantOut(BaseModel):
    id: int
    user: str | None
    group: str | None
    connection: str | None
    tag: str | None
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True)
class Granted:
    connection_ids: frozenset[str]
    tags: frozenset[str]

    def covers(self, connection: Connection) -> bool:
        return connection.id in self.connection_ids or bool(self.tags & set(connection.tags or []))


def granted(db: Database, user: User) -> Granted:
    """What the grants give ``user`` (directly or through its groups)."""
    with db.session() as s:
        groups = list(s.scalars(select(GroupMember.group_id).where(GroupMember.user_id == user.id)))
        rows = s.execute(select(Grant.connection_id, Grant.tag).where(
            or_(Grant.user_id == user.id, Grant.group_id.in_(groups or [-1])))).all()
    return Granted(frozenset(r.connection_id for r in rows if r.connection_id),
                   frozenset(r.tag for r in rows if r.tag))


def may_open(db: Database, user: User, connection: Connection, given: Granted | None = None) -> bool:
    """``given``: ``granted(db, user)`` already read (a list of connections asks once)."""
    if connections.may_open(user, connection):
        return True
    return (given or granted(db, user)).covers(connection)


def connection_to_open(db: Database, user: User, connection_id: str,
                       on_denied: Callable[[bool], None] | None = None) -> Connection:
    """The connection ``user`` may open, or ForbiddenError: one answer for "no such connection" and "not
    yours", so ids that exist are not revealed. ``on_denied(exists)`` runs first (the tunnel token audits)."""
    try:
        row = connections.get_connection(db, connection_id)
    except NotFoundError:
        row = None
    if row is None or not may_open(db, user, row):
        if on_denied is not None:
            on_denied(row is not None)
        raise ForbiddenError(f"you may not open the connection {connection_id!r}: it does not exist or is "
                             "not granted to you (ask an administrator)")
    return row


def openable(db: Database, user: User) -> list[Connection]:
    given = granted(db, user)
    return [c for c in connections.all_connections(db) if may_open(db, user, c, given)]


def _out(grant: Grant, names: dict) -> GrantOut:
    return GrantOut(id=grant.id, user=names["users"].get(grant.user_id), group=names["groups"].get(grant.group_id),
                    connection=grant.connection_id, tag=grant.tag, created_at=grant.created_at,
                    created_by=grant.created_by)


def _names(s) -> dict:
    return {"users": dict(s.execute(select(User.id, User.username)).all()),
            "groups": dict(s.execute(select(Group.id, Group.name)).all())}


def list_grants(db: Database) -> list[GrantOut]:
    with db.session() as s:
        names = _names(s)
        return [_out(g, names) for g in s.scalars(select(Grant).order_by(Grant.id))]


def add_grant(db: Database, spec: GrantIn, by: str | None) -> GrantOut:
    with db.session() as s:
        user_id = group_id = None
        if spec.user is not None:
            user_id = s.scalar(select(User.id).where(User.username == spec.user))
            if user_id is None:
                raise NotFoundError(f"no user {spec.user!r}")
        else:
            group_id = s.scalar(select(Group.id).where(Group.name == spec.group))
            if group_id is None:
                raise NotFoundError(f"no group {spec.group!r}")
        if spec.connection is not None and s.get(Connection, spec.connection) is None:
            raise NotFoundError(f"no connection {spec.connection!r}")
        same = s.scalar(select(Grant.id).where(Grant.user_id.is_(user_id) if user_id is None else
                                               Grant.user_id == user_id,
                                               Grant.group_id.is_(None) if group_id is None else
                                               Grant.group_id == group_id,
                                               Grant.connection_id.is_(None) if spec.connection is None else
                                               Grant.connection_id == spec.connection,
                                               Grant.tag.is_(None) if spec.tag is None else Grant.tag == spec.tag))
        if same is not None:
            raise ConflictError(f"this grant exists already (grant {same})")
        grant = Grant(user_id=user_id, group_id=group_id, connection_id=spec.connection, tag=spec.tag,
                      created_at=db.now(), created_by=by)
        s.add(grant)
        s.flush()
        return _out(grant, _names(s))


def remove_grant(db: Database, grant_id: int) -> GrantOut:
    with db.session() as s:
        grant = s.get(Grant, grant_id)
        if grant is None:
            raise NotFoundError(f"no grant {grant_id}")
        out = _out(grant, _names(s))
        s.delete(grant)
        return out
