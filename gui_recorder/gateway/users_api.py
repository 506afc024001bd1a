"""The admin console's API: users, groups, grants (``/api/admin/...``), every change audited.

Thin over the domain (``users``, ``groups``, ``grants``). What only the
running gateway can do is here: disabling or deleting an account ends its
live sessions and watches at once (its sign-ins, tunnel and watch tokens are
revoked first, so nothing reopens them). The connection test and the
read-only settings page are in ``console_api``.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from gui_recorder.db import User
from gui_recorder.errors import ConflictError
from gui_recorder.gateway import audit, grants, groups, users
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.grants import GrantIn, GrantOut
from gui_recorder.gateway.groups import GroupIn, GroupOut
from gui_recorder.gateway.relay import Ending
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.gateway.users import GROUP_PATTERN, TAG_PATTERN, USERNAME_PATTERN, UserOut
from gui_recorder.guacd.status import Status
from gui_recorder.sessions import control
from gui_recorder.vocabulary import Capability, Role, SessionStatus, UserSource

USER_ADMIN = require_capability(Capability.USER_ADMIN)
CONNECTION_ADMIN = require_capability(Capability.CONNECTION_ADMIN)
router = APIRouter(prefix="/api/admin", tags=["admin"])
Username = Path(max_length=64)


class UserIn(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN)
    role: Role
    source: UserSource = UserSource.LOCAL
    # Write-only, for a local account; never echoed, never logged.
    password: str | None = Field(None, min_length=1, max_length=1024)
    groups: list[str] = Field([], max_length=users.MAX_GROUPS)


class RoleIn(BaseModel):
    role: Role


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


class GroupsIn(BaseModel):
    groups: list[str] = Field(max_length=users.MAX_GROUPS)


class ScopeIn(BaseModel):
    tags: list[str] = Field(max_length=users.MAX_TAGS, description=f"tags ({TAG_PATTERN}); empty: every session")


def _event(services: Services, request: Request, admin: User, action: str, target: str, detail: dict) -> None:
    audit.record_event(services.db, admin.username, action, target, client_addr(request), detail)


def end_relays_of(services: Services, username: str, why: str) -> int:
    """End every live session and watch of ``username`` on this gateway; returns how many.

    On the event loop: the relays' tasks belong to it. Each relay closes the browser with
    SESSION_CLOSED and its row ends ``terminated`` with the reason.
    """
    ending = Ending(SessionStatus.TERMINATED, why, Status.SESSION_CLOSED, f"This session was ended: {why}.")
    services.watch_tokens.revoke_user(username)
    ended = 0
    remote = [w for watchers in services.remote_watchers.values() for w in watchers]
    for relay in [*services.active.values(), *remote]:
        for each in (relay, *relay.watchers):
            if each.username == username:
                each.end(ending)
                ended += 1
    # Their sessions relayed by other gateways on this database: each owner ends its own.
    for session_id, gateway_id in control.active_elsewhere(services.db, username, services.gateway_id):
        control.request_termination(services.db, session_id, gateway_id, why)
        ended += 1
    return ended


# -- users -------------------------------------------------------------------------------------------
# Plain def routes: database work and hashing, which FastAPI runs in its thread pool; the two that end
# live relays are async (the relays belong to the event loop) with their database work in a thread.

@router.get("/users", response_model=list[UserOut])
def list_users(services: ServicesDep, admin: User = Depends(USER_ADMIN)) -> list[UserOut]:
    """Every account with its source, groups, scope and last sign-in."""
    return users.list_users(services.db)


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, request: Request, services: ServicesDep, admin: User = Depends(USER_ADMIN)) -> UserOut:
    """A local account (with a password that passes the policy) or an external one (LDAP/OIDC, no password)."""
    out = users.create_user(services.db, body.username, body.role, source=body.source, password=body.password,
                            groups=body.groups, min_length=services.settings.password_min_length)
    _event(services, request, admin, "user.create", out.username,
           {"role": out.role, "source": out.source, "groups": out.groups})
    return out


@router.get("/users/{username}", response_model=UserOut)
def get_user(services: ServicesDep, username: str = Username, admin: User = Depends(USER_ADMIN)) -> UserOut:
    return users.get_user(services.db, username)


@router.put("/users/{username}/role", response_model=UserOut)
def set_role(body: RoleIn, request: Request, services: ServicesDep, username: str = Username,
             admin: User = Depends(USER_ADMIN)) -> UserOut:
    before = users.get_user(services.db, username).role
    out = users.set_role(services.db, username, body.role)
    _event(services, request, admin, "user.role", username, {"from": before, "to": out.role})
    return out


@router.put("/users/{username}/password", response_model=UserOut)
def reset_password(body: PasswordIn, request: Request, services: ServicesDep, username: str = Username,
                   admin: User = Depends(USER_ADMIN)) -> UserOut:
    """A new password for a local account; its sign-ins end."""
    out = users.reset_password(services.db, username, body.password, services.settings.password_min_length)
    _event(services, request, admin, "user.password_reset", username, {})
    return out


@router.put("/users/{username}/groups", response_model=UserOut)
def set_groups(body: GroupsIn, request: Request, services: ServicesDep, username: str = Username,
               admin: User = Depends(USER_ADMIN)) -> UserOut:
    out = users.set_user_groups(services.db, username, body.groups)
    _event(services, request, admin, "user.groups", username, {"groups": out.groups})
    return out


@router.put("/users/{username}/scope", response_model=UserOut)
def set_scope(body: ScopeIn, request: Request, services: ServicesDep, username: str = Username,
              admin: User = Depends(USER_ADMIN)) -> UserOut:
    """Limit the account's oversight to sessions of connections with these tags (empty: no limit)."""
    out = users.set_scope(services.db, username, body.tags)
    _event(services, request, admin, "user.scope", username, {"tags": out.scope_tags})
    return out


@router.post("/users/{username}/disable", response_model=UserOut)
async def disable_user(request: Request, services: ServicesDep, username: str = Username,
                       admin: User = Depends(USER_ADMIN)) -> UserOut:
    """Disable: sign-ins and tokens stop working and live sessions end, at once."""
    out = await asyncio.to_thread(users.set_disabled, services.db, username, True)
    ended = end_relays_of(services, username, f"the account {username} was disabled by {admin.username}")
    await asyncio.to_thread(_event, services, request, admin, "user.disable", username, {"relays_ended": ended})
    return out


@router.post("/users/{username}/enable", response_model=UserOut)
def enable_user(request: Request, services: ServicesDep, username: str = Username,
                admin: User = Depends(USER_ADMIN)) -> UserOut:
    out = users.set_disabled(services.db, username, False)
    _event(services, request, admin, "user.enable", username, {})
    return out


@router.delete("/users/{username}", status_code=204)
async def delete_user(request: Request, services: ServicesDep, username: str = Username,
                      admin: User = Depends(USER_ADMIN)) -> None:
    """Delete the account; its sessions and recordings stay (evidence), under its name."""
    await asyncio.to_thread(users.delete_user, services.db, username)
    ended = end_relays_of(services, username, f"the account {username} was deleted by {admin.username}")
    await asyncio.to_thread(_event, services, request, admin, "user.delete", username, {"relays_ended": ended})


# -- groups ------------------------------------------------------------------------------------------

@router.get("/groups", response_model=list[GroupOut])
def list_groups(services: ServicesDep, admin: User = Depends(USER_ADMIN)) -> list[GroupOut]:
    return groups.list_groups(services.db)


@router.post("/groups", response_model=GroupOut, status_code=201)
def create_group(body: GroupIn, request: Request, services: ServicesDep,
                 admin: User = Depends(USER_ADMIN)) -> GroupOut:
    out = groups.save_group(services.db, body, create=True)
    _event(services, request, admin, "group.create", out.name, {"members": out.members, "scope_tags": out.scope_tags})
    return out


@router.put("/groups/{name}", response_model=GroupOut)
def replace_group(body: GroupIn, request: Request, services: ServicesDep,
                  name: str = Path(pattern=GROUP_PATTERN), admin: User = Depends(USER_ADMIN)) -> GroupOut:
    if body.name != name:
        raise ConflictError("the name in the body differs from the name in the path")
    out = groups.save_group(services.db, body, create=False)
    _event(services, request, admin, "group.update", name, {"members": out.members, "scope_tags": out.scope_tags})
    return out


@router.delete("/groups/{name}", status_code=204)
def delete_group(request: Request, services: ServicesDep, name: str = Path(max_length=64),
                 admin: User = Depends(USER_ADMIN)) -> None:
    groups.delete_group(services.db, name)
    _event(services, request, admin, "group.delete", name, {})


# -- grants ------------------------------------------------------------------------------------------

@router.get("/grants", response_model=list[GrantOut])
def list_grants(services: ServicesDep, admin: User = Depends(CONNECTION_ADMIN)) -> list[GrantOut]:
    return grants.list_grants(services.db)


@router.post("/grants", response_model=GrantOut, status_code=201)
def add_grant(body: GrantIn, request: Request, services: ServicesDep,
              admin: User = Depends(CONNECTION_ADMIN)) -> GrantOut:
    """Give a user or a group one connection, or every connection with a tag."""
    out = grants.add_grant(services.db, body, admin.username)
    _event(services, request, admin, "grant.create", str(out.id), body.model_dump())
    return out


@router.delete("/grants/{grant_id}", status_code=204)
def remove_grant(request: Request, services: ServicesDep, grant_id: int = Path(ge=1),
                 admin: User = Depends(CONNECTION_ADMIN)) -> None:
    out = grants.remove_grant(services.db, grant_id)
    _event(services, request, admin, "grant.delete", str(grant_id),
           out.model_dump(include={"user", "group", "connection", "tag"}))
