"""Routes over connections: a user's own list and tunnel tokens; the admin API (``/api/admin/connections``).

The connections themselves (validation, sealing, grants, guacd's parameters)
are ``gateway.connections``.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gui_recorder.db import User
from gui_recorder.errors import ConflictError, ForbiddenError
from gui_recorder.gateway import audit, grants, tokens
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.connections import (ConnectionAdminOut, ConnectionIn, ConnectionOut, admin_view,
                                              ensure_connection, exists, get_connection, remove)
from gui_recorder.gateway.connections import all_connections
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.guardrails import approvals, consent
from gui_recorder.vocabulary import Capability

router = APIRouter(tags=["connections"])
USE = require_capability(Capability.CONNECTION_USE)
ADMIN = require_capability(Capability.CONNECTION_ADMIN)


# Plain def routes: database work and sealing, which FastAPI runs in its thread pool.

class MyConnectionOut(ConnectionOut):
    requires_approval: bool = Field(False, description="sessions only inside an approved access window")
    access_until: datetime | None = Field(None, description="the end of the approved window open now, if any")


@router.get("/api/connections", response_model=list[MyConnectionOut])
def my_connections(services: ServicesDep, user: User = Depends(USE)) -> list[MyConnectionOut]:
    out = []
    for r in grants.openable(services.db, user):
        gated = bool((r.recording_policy or {}).get("require_approval"))
        until = None
        if gated:
            try:
                until = approvals.open_window(services.db, user.username, r.id)
            except ForbiddenError:
                pass
        out.append(MyConnectionOut(id=r.id, name=r.name, protocol=r.protocol, requires_approval=gated,
                                   access_until=until))
    return out


class TunnelTokenOut(BaseModel):
    token: str
    expires_in: int


class TunnelTokenIn(BaseModel):
    consent_version: str | None = Field(None, max_length=64)  # the accepted notice's version, when it has one


@router.post("/api/connections/{connection_id}/tunnel-token", response_model=TunnelTokenOut)
def tunnel_token(connection_id: str, request: Request, services: ServicesDep, body: TunnelTokenIn | None = None,
                 user: User = Depends(USE)) -> TunnelTokenOut:
    db, settings = services.db, services.settings
    row = grants.connection_to_open(db, user, connection_id, lambda exists: audit.record_event(
        db, user.username, "connection.denied", connection_id, client_addr(request), {"exists": exists}))
    if (row.recording_policy or {}).get("require_approval"):
        try:
            approvals.open_window(db, user.username, row.id)  # just-in-time access (issue 14)
        except ForbiddenError:
            audit.record_event(db, user.username, "connection.no_window", connection_id, client_addr(request), {})
            raise
    accepted = consent.check(row.recording_policy, body.consent_version if body else None, connection_id)
    token = tokens.issue_tunnel_token(db, user, row, settings.tunnel_token_ttl_seconds)
    if accepted is not None:
        consent.record(db, user.username, row.id, consent.notice_of(row.recording_policy), token, client_addr(request))
    audit.record_event(db, user.username, "connection.token", connection_id, client_addr(request),
                       {"consent_version": accepted} if accepted else {})
    return TunnelTokenOut(token=token, expires_in=settings.tunnel_token_ttl_seconds)


admin = APIRouter(prefix="/api/admin/connections", tags=["admin"], dependencies=[Depends(ADMIN)])


@admin.get("", response_model=list[ConnectionAdminOut])
def list_all(services: ServicesDep) -> list[ConnectionAdminOut]:
    return [admin_view(r, services.settings) for r in all_connections(services.db)]


@admin.post("", response_model=ConnectionAdminOut, status_code=201)
def create(spec: ConnectionIn, request: Request, services: ServicesDep,
           user: User = Depends(ADMIN)) -> ConnectionAdminOut:
    db, settings = services.db, services.settings
    if exists(db, spec.id):
        raise ConflictError(f"a connection {spec.id!r} already exists; use PUT to change it")
    row = ensure_connection(db, settings, spec)
    audit.record_event(db, user.username, "connection.create", spec.id, client_addr(request), {})
    return admin_view(row, settings)


@admin.get("/{connection_id}", response_model=ConnectionAdminOut)
def get_one(connection_id: str, services: ServicesDep) -> ConnectionAdminOut:
    return admin_view(get_connection(services.db, connection_id), services.settings)


@admin.put("/{connection_id}", response_model=ConnectionAdminOut)
def replace(connection_id: str, spec: ConnectionIn, request: Request, services: ServicesDep,
            user: User = Depends(ADMIN)) -> ConnectionAdminOut:
    db, settings = services.db, services.settings
    if spec.id != connection_id:
        raise ConflictError("the id in the body differs from the id in the path")
    get_connection(db, connection_id)
    row = ensure_connection(db, settings, spec)
    audit.record_event(db, user.username, "connection.update", connection_id, client_addr(request),
                       {"credentials_cleared": row.credentials_cleared})
    return admin_view(row, settings)


@admin.delete("/{connection_id}", status_code=204)
def delete(connection_id: str, request: Request, services: ServicesDep, user: User = Depends(ADMIN)) -> None:
    remove(services.db, connection_id)
    audit.record_event(services.db, user.username, "connection.delete", connection_id, client_addr(request), {})
