"""Groups: named sets of users that grants and auditor scopes name (the domain; routes in ``users_api``).

Groups are local, or created by ``users.provision_external_user`` when a
directory or provider names one the first time; either way an admin can give
them grants and scope tags here. No FastAPI here.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select

from gui_recorder.db import Database, Group, GroupMember, User
from gui_recorder.errors import ConflictError, NotFoundError
from gui_recorder.gateway.users import GROUP_PATTERN, MAX_TAGS, TAG_PATTERN, check_tags

MAX_MEMBERS = 5000


class GroupIn(BaseModel):
    name: str = Field(pattern=GROUP_PATTERN)
    description: str = Field("", max_length=255)
    scope_tags: list[str] = Field([], max_length=MAX_TAGS,
                                  description=f"members oversee only sessions of connections with these tags "
                                              f"({TAG_PATTERN})")
    members: list[str] = Field([], max_length=MAX_MEMBERS)


class GroupOut(BaseModel):
    name: str
    description: str
    scope_tags: list[str]
    members: list[str]


def _out(s, group: Group) -> GroupOut:
    members = list(s.scalars(select(User.username).join(GroupMember, GroupMember.user_id == User.id)
                             .where(GroupMember.group_id == group.id).order_by(User.username)))
    return GroupOut(name=group.name, description=group.description or "", scope_tags=list(group.scope_tags or []),
                    members=members)


def list_groups(db: Database) -> list[GroupOut]:
    with db.session() as s:
        return [_out(s, g) for g in s.scalars(select(Group).order_by(Group.name))]


def _members(s, group: Group, names: list[str]) -> None:
    ids = dict(s.execute(select(User.username, User.id).where(User.username.in_(names))).all())
    missing = sorted(set(names) - set(ids))
    if missing:
        raise NotFoundError(f"no user {', '.join(map(repr, missing[:10]))}")
    for member in s.scalars(select(GroupMember).where(GroupMember.group_id == group.id)):
        if member.user_id not in ids.values():
            s.delete(member)
    have = set(s.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id)))
    for uid in set(ids.values()) - have:
        s.add(GroupMember(group_id=group.id, user_id=uid))


def save_group(db: Database, spec: GroupIn, *, create: bool) -> GroupOut:
    """Create (``create``: 409 if it exists) or replace a group: description, scope tags, members."""
    tags = check_tags(spec.scope_tags)
    with db.session() as s:
        group = s.scalar(select(Group).where(Group.name == spec.name))
        if create and group is not None:
            raise ConflictError(f"a group {spec.name!r} already exists")
        if not create and group is None:
            raise NotFoundError(f"no group {spec.name!r}")
        if group is None:
            group = Group(name=spec.name, created_at=db.now())
            s.add(group)
        group.description, group.scope_tags = spec.description, tags
        s.flush()
        _members(s, group, sorted(set(spec.members)))
        s.flush()
        return _out(s, group)


def delete_group(db: Database, name: str) -> None:
    with db.session() as s:
        group = s.scalar(select(Group).where(Group.name == name))
        if group is None:
            raise NotFoundError(f"no group {name!r}")
        s.delete(group)

