"""Admins browse and export the audit trail."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gui_recorder.gateway.audit import list_events
from gui_recorder.gateway.auth import require_roles

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", dependencies=[Depends(require_roles("admin"))])
async def audit_events(request: Request, action: str | None = None, username: str | None = None,
                       since: datetime | None = None, limit: int = Query(500, ge=1, le=10_000)) -> list[dict]:
    return await asyncio.to_thread(list_events, request.app.state.db, action, username, since, limit)


@router.get("/export", dependencies=[Depends(require_roles("admin"))])
async def audit_export(request: Request) -> StreamingResponse:
    events = await asyncio.to_thread(list_events, request.app.state.db, None, None, None, 1_000_000)
    lines = (json.dumps(e) + "\n" for e in reversed(events))
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"Content-Disposition": "attachment; filename=audit.jsonl"})
