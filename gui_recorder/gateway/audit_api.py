"""Admins browse and export the audit trail."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from gui_recorder.gateway.audit import list_events
from gui_recorder.gateway.auth import require_capability
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.vocabulary import Capability

router = APIRouter(prefix="/api/audit", tags=["audit"])
AUDIT_READ = require_capability(Capability.AUDIT_READ)


class AuditEventOut(BaseModel):
    id: int
    at: str  # ISO 8601 with its UTC offset, as stored
    username: str | None
    action: str
    target: str | None
    client_addr: str | None
    detail: dict
    # The chain (issue 13): null for events recorded before it existed.
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None


@router.get("", response_model=list[AuditEventOut], dependencies=[Depends(AUDIT_READ)])
def audit_events(services: ServicesDep, action: str | None = Query(None, max_length=64),
                 username: str | None = Query(None, max_length=64), since: datetime | None = None,
                 limit: int = Query(500, ge=1, le=10_000)) -> list[dict]:
    """The newest events first."""
    return list_events(services.db, action, username, since, limit)


@router.get("/export", dependencies=[Depends(AUDIT_READ)], response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}}})
def audit_export(services: ServicesDep) -> StreamingResponse:
    """Every event, oldest first, one JSON object per line, each with its seq, prev_hash and hash."""
    events = list_events(services.db, None, None, None, 1_000_000)
    lines = (json.dumps(e) + "\n" for e in reversed(events))
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"Content-Disposition": "attachment; filename=audit.jsonl"})
