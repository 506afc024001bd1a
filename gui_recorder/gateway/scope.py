"""Auditor scopes: which sessions an overseer (``session.view_all``) may see, from tags.

An account is scoped when it, or any group it belongs to, names tags
(``User.scope_tags``, ``Group.scope_tags``): it then oversees only the
sessions of connections that carry one of those tags now (an auditor of
``finance`` sees, searches, watches and exports only those), plus its own
sessions. An account with no scope tags anywhere oversees every session.

A session counts by its connection's tags at the time of the read, so
re-tagging a connection moves its past sessions with it; a session whose
connection was deleted has no tags and is outside every scope (closed, not
open, when in doubt).

Enforced in one place: ``gateway.access`` (every session route and the
search) and the sessions list, which both ask ``scope_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from gui_recorder.db import Connection, Database, Group, GroupMember, User


@dataclass(frozen=True)
class Scope:
    tags: frozenset[str]  # empty: not scoped
    connection_ids: frozenset[str] | None  # the connections in scope; None: every one

    @property
    def limited(self) -> bool:
        return self.connection_ids is not None

    def allows(self, connection_id: str) -> bool:
        return self.connection_ids is None or connection_id in self.connection_ids


UNSCOPED = Scope(frozenset(), None)


def scope_tags(db: Database, user: User) -> frozenset[str]:
    with db.session() as s:
        own = s.scalar(select(User.scope_tags).where(User.id == user.id)) or []
        groups = s.scalars(select(Group.scope_tags).join(GroupMember, GroupMember.group_id == Group.id)
                           .where(GroupMember.user_id == user.id))
        return frozenset(own).union(*(g or [] for g in groups))


def oversees(db: Database, user: User, connection_id: str) -> bool:
    """Whether a session on ``connection_id`` is in ``user``'s scope: one connection's tags, not the list
    (every read of a session asks)."""
    tags = scope_tags(db, user)
    if not tags:
        return True
    with db.session() as s:
        have = s.scalar(select(Connection.tags).where(Connection.id == connection_id))
    return bool(tags & set(have or []))


def scope_of(db: Database, user: User) -> Scope:
    tags = scope_tags(db, user)
    if not tags:
        return UNSCOPED
    with db.session() as s:
        # Tags are a JSON list per connection; connections are few (an admin's list), so filter here.
        ids = frozenset(cid for cid, have in s.execute(select(Connection.id, Connection.tags))
                        if tags & set(have or []))
    return Scope(tags, ids)
