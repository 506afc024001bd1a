"""Routes of access: just-in-time windows (a user requests, an approver decides; audited) and the
consent notice (what to accept; who accepted it for a session)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gui_recorder.db import User
from gui_recorder.gateway import audit, grants
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.guardrails import approvals, consent
from gui_recorder.vocabulary import AccessRequestStatus, Capability

USE = require_capability(Capability.CONNECTION_USE)
APPROVE = require_capability(Capability.ACCESS_APPROVE)
CONSENT = session_access(Capability.SESSION_VIEW_ALL, "consent.view", collapse=True)
router = APIRouter(tags=["access"])


class AccessRequestIn(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)
    starts_at: datetime
    ends_at: datetime


class DecisionIn(BaseModel):
    approve: bool
    note: str = Field("", max_length=2000)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.post("/api/connections/{connection_id}/access-requests", status_code=201)
def request_access(connection_id: str, body: AccessRequestIn, request: Request, services: ServicesDep,
                   user: User = Depends(USE)) -> dict:
    grants.connection_to_open(services.db, user, connection_id)  # or 403
    out = approvals.request_access(services.db, user.username, connection_id, body.reason, _utc(body.starts_at),
                                   _utc(body.ends_at))
    audit.record_event(services.db, user.username, "access.request", str(out["id"]), client_addr(request),
                       {"connection": connection_id, "reason": body.reason, "starts_at": out["starts_at"],
                        "ends_at": out["ends_at"]})
    return out


@router.get("/api/access-requests")
def my_requests(services: ServicesDep, user: User = Depends(USE)) -> list[dict]:
    return approvals.list_requests(services.db, username=user.username)


@router.get("/api/admin/access-requests")
def all_requests(services: ServicesDep, status: AccessRequestStatus | None = None,
                 user: User = Depends(APPROVE)) -> list[dict]:
    return approvals.list_requests(services.db, status=status)


@router.post("/api/admin/access-requests/{request_id}/decision")
def decide(request_id: int, body: DecisionIn, request: Request, services: ServicesDep,
           user: User = Depends(APPROVE)) -> dict:
    out = approvals.decide(services.db, request_id, user.username, body.approve, body.note)
    audit.record_event(services.db, user.username, "access.approve" if body.approve else "access.deny",
                       str(request_id), client_addr(request),
                       {"user": out["user"], "connection": out["connection_id"], "note": body.note})
    return out


@router.get("/api/connections/{connection_id}/consent")
def connection_consent(connection_id: str, services: ServicesDep, user: User = Depends(USE)) -> dict:
    """The notice to accept before a session (``required: false`` when the connection has none)."""
    row = grants.connection_to_open(services.db, user, connection_id)
    text = consent.notice_of(row.recording_policy)
    return {"required": text is not None, "text": text, "version": consent.version(text) if text else None}


@router.get("/api/sessions/{session_id}/consent")
def session_consent(services: ServicesDep, grant: SessionGrant = Depends(CONSENT)) -> dict:
    """Who accepted which notice, when, for this session (``accepted: null`` when none was required)."""
    return {"session_id": grant.session.id, "accepted": consent.for_session(services.db, grant.session.id)}
