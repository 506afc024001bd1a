"""The WebSocket tunnel: `Guacamole.WebSocketTunnel` on one side, guacd on the other.

Order matters and is the security of the gateway: the one-time token is
consumed before anything talks to guacd; the recording is opened before the
target is reached (no recording, no session); only then does the gateway do the
guacd handshake itself, with the stored credentials, which never reach the
browser.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from gui_recorder.errors import (
    AuthError, ForbiddenError, GuacdError, GuiRecorderError, HostKeyError, RecordingError,
)
from gui_recorder.gateway import audit, connections, ssh, tokens
from gui_recorder.gateway.auth import public
from gui_recorder.gateway.filter import ClientFilter, ClientPolicy
from gui_recorder.gateway.relay import Ending, Relay, State
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.guacd import ClientInfo
from gui_recorder.guacd.status import Status, websocket_close_code
from gui_recorder.protocol import encode
from gui_recorder.guardrails import approvals, consent
from gui_recorder.sessions import rows
from gui_recorder import telemetry
from gui_recorder.vocabulary import SessionStatus

log = logging.getLogger(__name__)
router = APIRouter()

SUBPROTOCOL = "guacamole"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


async def refuse(websocket: WebSocket, code: int, message: str) -> None:
    """Tell the browser why, the way guacamole-common-js understands, and close.

    The Guacamole status goes in the `error` instruction and the close reason (what the
    client reads); the close code is the one Guacamole's own tunnel endpoint uses for it.
    """
    try:
        await websocket.send_text(encode(("error", message, str(int(code)))))
        await websocket.close(code=websocket_close_code(code), reason=str(int(code)))
    except Exception:  # noqa: BLE001 - the browser may already be gone
        pass


async def refuse_error(websocket: WebSocket, exc: GuiRecorderError) -> None:
    """The WebSocket edge's one handler of typed errors: their Guacamole status, a message to act on.

    Server-side failures (database, object store down) are logged in full and told generically:
    their text names internal endpoints.
    """
    if exc.http_status >= 500:
        log.error("tunnel refused: %s: %s", type(exc).__name__, exc)
        message = "The gateway cannot open sessions right now; try again in a minute or tell an administrator."
    else:
        message = str(exc)
    await refuse(websocket, exc.guacamole_status, message)


@router.websocket("/api/tunnel", dependencies=[Depends(public("checks its own one-time tunnel token"))])
async def tunnel(websocket: WebSocket, services: ServicesDep, token: str = "", width: int = 1024,
                 height: int = 768, dpi: int = 96) -> None:
    try:
        await _tunnel(websocket, services, token, width, height, dpi)
    except WebSocketDisconnect:
        pass  # gone before a session row existed (e.g. at accept): nothing to close
    except GuiRecorderError as exc:
        # E.g. the database is down: nothing is opened unrecorded or unaccounted for.
        await refuse_error(websocket, exc)


async def _tunnel(websocket: WebSocket, services: Services, token: str, width: int, height: int,
                  dpi: int) -> None:
    settings, db, recordings = services.settings, services.db, services.recordings
    client_addr = websocket.client.host if websocket.client else None
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)

    try:
        user, connection = await asyncio.to_thread(
            tokens.consume_tunnel_token, db, token, websocket.cookies.get(tokens.COOKIE_NAME))
    except (AuthError, ForbiddenError) as exc:
        await asyncio.to_thread(audit.record_event, db, None, "tunnel.refused", None, client_addr,
                                {"reason": str(exc)})
        code = Status.CLIENT_FORBIDDEN if isinstance(exc, ForbiddenError) else Status.CLIENT_UNAUTHORIZED
        await refuse(websocket, code, str(exc))
        return

    policy = dict(connection.recording_policy or {})
    session = await asyncio.to_thread(rows.create_session, db, user, connection, client_addr, None,
                                      services.gateway_id)
    telemetry.bind(session=session.id)  # every log line and span of this session from here on
    if policy.get("consent_text"):
        await asyncio.to_thread(consent.attach, db, token, session.id)  # the accepted notice, with the session
    # From here the row is live: whatever happens below (the browser gone at any step, guacd refusing, a
    # bug), the `finally` gives it a final status and a true reason (issue 10: rows stayed `active`).
    ending = Ending(SessionStatus.FAILED, "the gateway failed while opening the session", Status.SERVER_ERROR)
    recorder = relay = typescript = None
    try:
        meta = {"session_id": session.id, "user": user.username, "connection": connection.id,
                "connection_name": connection.name, "protocol": connection.protocol}
        try:
            recorder = recordings.open(session.id, meta)
        except RecordingError as exc:
            ending = Ending(SessionStatus.REFUSED, f"recording unavailable: {exc}", Status.SERVER_ERROR)
            await refuse(websocket, Status.SERVER_ERROR,
                         "The session cannot be recorded right now, so it cannot be opened.")
            return

        # The guardrail rules in force for this user and connection, before the target is reached.
        guard = await asyncio.to_thread(services.guardrails.session_guard, session.id, user.username, user.role,
                                        connection.id, tuple(connection.tags or ()))
        client_policy = ClientPolicy.from_recording_policy(policy)
        definition = connections.definition_for(connection, settings, client_policy)
        try:
            definition, typescript = await ssh.prepare(services, connection, definition, session.id, recorder,
                                                       user.username, client_addr)
        except HostKeyError as exc:
            recorder.spool.discard()  # nothing reached the target: nothing to keep
            ending = Ending(SessionStatus.REFUSED, str(exc), exc.guacamole_status)
            await refuse(websocket, exc.guacamole_status, str(exc))  # what to act on, not the generic 5xx text
            return
        client = ClientInfo(width=_clamp(width, 64, 8192), height=_clamp(height, 64, 8192),
                            dpi=_clamp(dpi, 48, 600))
        try:
            with telemetry.span("tunnel.open", protocol=connection.protocol, connection=connection.id):
                guacd = await services.guacd.open(definition, client)
        except GuacdError as exc:
            recorder.spool.discard()  # nothing reached the target: nothing to keep
            ending = Ending(SessionStatus.REFUSED, f"guacd error {int(exc.status)}: {exc}", exc.status)
            await refuse(websocket, exc.status, str(exc))
            return

        window_end = None
        if policy.get("require_approval"):
            try:
                window_end = await asyncio.to_thread(approvals.open_window, db, user.username, connection.id)
            except ForbiddenError:
                window_end = db.now()  # the window closed since the token was issued: ended at once
        relay = Relay(websocket, guacd, recorder, ClientFilter(client_policy), session_id=session.id,
                      fail_closed=bool(policy.get("fail_closed", True)),
                      on_recording_failed=recordings.recording_failed, username=user.username, guard=guard,
                      on_guard_hits=services.guardrails.raise_hits, stall_seconds=settings.browser_stall_seconds)
        relay.window_end = window_end  # the enforcer warns before it and ends the session at it
        relay.identity = (session.id, user.username, user.role, connection.id)  # for rules saved while it runs
        relay.four_eyes = bool(policy.get("four_eyes"))
        services.active[session.id] = relay
        try:
            host, port = guacd.address
            await asyncio.to_thread(rows.update_session, db, session.id, guacd_connection_id=guacd.connection_id,
                                    guacd_address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            await asyncio.to_thread(audit.record_event, db, user.username, "session.start", session.id,
                                    client_addr, {"connection": connection.id, "protocol": connection.protocol})
            try:
                await websocket.send_text(encode(("", session.id)))  # the tunnel UUID, first of all
            except (WebSocketDisconnect, OSError, RuntimeError):
                # The browser left before the tunnel's first message: the relay sees it and ends truly.
                pass
            ending = await relay.run()
        finally:
            services.active.pop(session.id, None)
            if relay.state is State.RUNNING:  # an exception before or around run(): close both sides
                relay.end(ending)
                await relay.run()
    finally:
        if typescript is not None:
            typescript.close()  # after the recorder's last read (relay.run finished it)
        if recorder is not None:
            # The spool directory is closed (finished, or abandoned for the service to seal) in all cases.
            if not recorder.finished:
                recorder.spool.abandon()
            recordings.closed(session.id, relay.recording_error if relay is not None else None)
            if relay is None:
                recorder = None  # no relay ran: wall_start is unknown
        await _end_row(db, session.id, ending, relay, recorder)
    if ending.violation:
        await asyncio.to_thread(audit.record_event, db, user.username, "security.violation", session.id,
                                client_addr, {"detail": ending.violation})
    await asyncio.to_thread(audit.record_event, db, user.username, "session.end", session.id, client_addr,
                            {"status": ending.status, "reason": ending.reason})


async def _end_row(db, session_id: str, ending: Ending, relay: Relay | None, recorder) -> None:
    """Store the session's end. Run in a thread that finishes even if this task is cancelled."""
    try:
        await asyncio.to_thread(
            rows.end_session, db, session_id, ending.status, ending.reason,
            relay.bytes_to_client if relay else 0, relay.bytes_from_client if relay else 0,
            recorder.wall_start_ms if recorder else None)
    except GuiRecorderError as exc:
        log.error("session %s: cannot store its end (%s): %s", session_id, ending.reason, exc)
