"""Live oversight: auditors watch a running session read-only, and may end it.

Watching joins the owner's guacd connection (``select,$id`` with
``read-only=true``), so the watcher sees exactly what the user sees, as guacd
broadcasts it. Watchers hold no recorder (the owner's relay records) and are
ended with the owner, since guacd would keep a connection alive for them.
Either works from any gateway sharing the database (``cluster``): the watcher
joins on the session's guacd, and a termination is handed to the owner.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Depends, Request, WebSocket
from pydantic import BaseModel, Field
from sqlalchemy import select

from gui_recorder.db import User

from gui_recorder.errors import AuthError, GuacdError, NotFoundError
from gui_recorder.gateway import audit, cluster
from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.gateway.auth import client_addr, public
from gui_recorder.gateway.filter import WatcherFilter
from gui_recorder.gateway.relay import Relay
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.gateway.tunnel import SUBPROTOCOL, refuse
from gui_recorder.guacd import ClientInfo
from gui_recorder.guacd.status import Status
from gui_recorder.protocol import encode
from gui_recorder.sessions import control
from gui_recorder.settings import parse_host_ports
from gui_recorder.vocabulary import Capability, has_capability

router = APIRouter(tags=["live"])
# Actions: the watch itself is recorded when the WebSocket joins, the termination once it is asked for.
WATCH = session_access(Capability.SESSION_WATCH, None)
TERMINATE = session_access(Capability.SESSION_TERMINATE, None)


def _may_approve(db, username: str) -> bool:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    return user is not None and not user.disabled and has_capability(user.role, Capability.ACCESS_APPROVE)


async def _where(services: Services, session_id: str) -> tuple[Relay | None, tuple[str, int], str, str]:
    """Where a live session runs: its relay if this gateway carries it, its guacd and connection id,
    and the gateway that owns it. NotFound when it is not running anywhere."""
    relay = services.active.get(session_id)
    if relay is not None:
        return relay, relay.guacd.address, relay.guacd.connection_id, services.gateway_id
    row = await asyncio.to_thread(control.live_row, services.db, session_id)
    return None, parse_host_ports(row.guacd_address)[0], row.guacd_connection_id, row.gateway_id


class TokenOut(BaseModel):
    token: str


@router.post("/api/sessions/{session_id}/watch-token", response_model=TokenOut)
async def watch_token(services: ServicesDep, grant: SessionGrant = Depends(WATCH)) -> TokenOut:
    # async: no blocking work, and the relays and tokens are the event loop's to touch.
    session_id = grant.session.id
    if session_id not in services.active:
        await asyncio.to_thread(control.live_row, services.db, session_id)  # running on another gateway
    token = await asyncio.to_thread(services.watch_tokens.issue, grant.user.username, session_id)
    return TokenOut(token=token)


class TerminateIn(BaseModel):
    reason: str = Field("", max_length=500)


@router.post("/api/sessions/{session_id}/terminate", status_code=202)
async def terminate(request: Request, services: ServicesDep, body: TerminateIn | None = None,
                    grant: SessionGrant = Depends(TERMINATE)) -> dict:
    # async: Relay.terminate acts on the relay's tasks, which belong to the event loop.
    user, session_id = grant.user, grant.session.id
    relay, _, _, owner = await _where(services, session_id)
    reason = (body.reason if body else "").strip()
    by = f"{user.role} {user.username}" + (f": {reason}" if reason else "")
    if relay is not None:
        relay.terminate(by)
    else:  # relayed by another gateway: it ends the session within gateway_control_poll_seconds
        await asyncio.to_thread(control.request_termination, services.db, session_id, owner, by)
    await asyncio.to_thread(audit.record_event, services.db, user.username, "session.terminate",
                            session_id, client_addr(request),
                            {"reason": reason, **({} if relay is not None else {"gateway": owner})})
    return {"status": "terminating", "gateway": owner}


@router.websocket("/api/watch", dependencies=[Depends(public("checks its own one-time watch token"))])
async def watch(websocket: WebSocket, services: ServicesDep, token: str = "", width: int = 1024,
                height: int = 768) -> None:
    db = services.db
    where = websocket.client.host if websocket.client else None
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        grant = await asyncio.to_thread(services.watch_tokens.consume, token)
        owner, address, connection_id, _ = await _where(services, grant.session_id)
    except (AuthError, NotFoundError) as exc:
        code = Status.CLIENT_UNAUTHORIZED if isinstance(exc, AuthError) else Status.RESOURCE_NOT_FOUND
        await refuse(websocket, code, str(exc))
        return
    try:
        # On the owner's guacd: only it knows the connection, wherever the owner's relay runs.
        guacd = await services.guacd.join(address, connection_id, ClientInfo(width=max(64, min(8192, width)),
                                                                             height=max(64, min(8192, height))))
    except GuacdError as exc:
        await refuse(websocket, exc.status, str(exc))
        return
    await asyncio.to_thread(audit.record_event, db, grant.username, "session.watch", grant.session_id, where,
                            {} if owner is not None else {"via": services.gateway_id})
    relay = Relay(websocket, guacd, None, WatcherFilter(), session_id=grant.session_id, username=grant.username,
                  stall_seconds=services.settings.browser_stall_seconds)
    # Four eyes (issue 14): a watcher who may approve access lets the owner's input through (the owner's
    # relay counts its approvers, so the approver watches through the gateway that relays the session).
    relay.approver = await asyncio.to_thread(_may_approve, db, grant.username)
    if owner is not None:
        owner.watchers.append(relay)
        if relay.approver:
            await owner.approver_joined()
    else:
        cluster.add_remote_watcher(services, grant.session_id, relay)
    try:
        await websocket.send_text(encode(("", str(uuid.uuid4()))))  # the tunnel UUID first
        ending = await relay.run()
    finally:
        if owner is not None and relay in owner.watchers:
            owner.watchers.remove(relay)
        cluster.remove_remote_watcher(services, grant.session_id, relay)
    await asyncio.to_thread(audit.record_event, db, grant.username, "session.watch_end", grant.session_id, where,
                            {"reason": ending.reason})
