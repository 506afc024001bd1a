"""The relay between one browser and guacd: whole instructions both ways, teed to the recorder.

An explicit state machine (``RUNNING`` -> ``CLOSING`` -> ``CLOSED``); whatever
ends the session first (the browser, guacd, a filter violation, a recording
failure, an auditor) wins, and both sides are closed exactly once.

Every instruction from guacd is written to the recording before the browser
sees it, so nothing is displayed that is not recorded. If the recording cannot
be written the session is ended when the connection's policy says so (the
default): a privileged session never runs unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gui_recorder.errors import ProtocolError, RecordingError
from gui_recorder.gateway.filter import ClientFilter, Verdict, WatcherFilter
from gui_recorder.guacd import GuacdConnection
from gui_recorder.guacd.status import Status
from gui_recorder.protocol import Instruction, Limits, Parser, encode
from gui_recorder.recording import SessionRecorder

log = logging.getLogger(__name__)
security_log = logging.getLogger("gui_recorder.security")

# A browser sends small instructions; guacd's own limits bound them (parser-constants.h).
BROWSER_LIMITS = Limits(max_element_length=8192, max_elements=128, max_instruction_length=32768)
TICK_SECONDS = 1.0


class State(enum.Enum):
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass
class Ending:
    status: str  # session status: ended | failed | terminated
    reason: str  # for people: stored with the session
    code: int = Status.SUCCESS  # Guacamole status sent to the browser
    message: str = ""  # for the browser's `error` instruction
    violation: str | None = None  # set when the browser broke the protocol policy


class Relay:
    def __init__(self, websocket: WebSocket, guacd: GuacdConnection, recorder: SessionRecorder | None,
                 client_filter: ClientFilter | WatcherFilter, *, session_id: str, fail_closed: bool = True):
        self.ws = websocket
        self.guacd = guacd
        self.recorder = recorder
        self.filter = client_filter
        self.session_id = session_id
        self.fail_closed = fail_closed
        self.state = State.RUNNING
        self.ending: Ending | None = None
        self.bytes_to_client = 0
        self.bytes_from_client = 0
        # A watcher's relay has no recorder: the owner's session already records the screen.
        self.recording_ok = recorder is not None
        self.watchers: list[Relay] = []
        self.started = time.monotonic()
        self._send_lock = asyncio.Lock()
        self._done = asyncio.Event()

    # -- ending -------------------------------------------------------------

    def end(self, ending: Ending) -> None:
        """Ask the session to end; the first reason wins."""
        if self.ending is None:
            self.ending = ending
        self._done.set()

    def terminate(self, by: str) -> None:
        self.end(Ending("terminated", f"terminated by {by}", Status.SESSION_CLOSED,
                        f"An auditor ({by}) ended this session."))

    def end_for_shutdown(self) -> None:
        self.end(Ending("ended", "the gateway was stopped", Status.SESSION_CLOSED,
                        "The gateway is shutting down; the session was ended."))

    # -- the two directions -------------------------------------------------

    async def _send_browser(self, text: str) -> None:
        async with self._send_lock:
            await self.ws.send_text(text)

    async def _guacd_to_browser(self) -> None:
        while True:
            instructions, wire = await self.guacd.read_wire()
            if not instructions:
                self.end(Ending("ended", "the remote desktop closed the session"))
                return
            self._tee_server(instructions, wire)
            if self.ending is not None:
                return  # e.g. the recording failed: what it could not record is not shown
            await self._send_browser(wire)
            self.bytes_to_client += len(wire)
            for ins in instructions:
                if ins[0] == "error":
                    code = int(ins[2]) if len(ins) > 2 and ins[2].isdigit() else Status.SERVER_ERROR
                    message = ins[1] if len(ins) > 1 else ""
                    # The browser already has guacd's `error`; only the close reason remains.
                    self.end(Ending("failed", f"guacd error {code}: {message}", code))
                    return

    async def _browser_to_guacd(self) -> None:
        parser = Parser(BROWSER_LIMITS)
        while True:
            try:
                text = await self.ws.receive_text()
            except WebSocketDisconnect:
                self.end(Ending("ended", "the user closed the browser session"))
                return
            except KeyError:
                # A binary frame: guacamole-common-js never sends one.
                self._violation("binary WebSocket message")
                return
            self.bytes_from_client += len(text)
            try:
                instructions = parser.feed_text(text)
            except ProtocolError as exc:
                self._violation(f"malformed instruction: {exc}")
                return
            forward: list[str] = []
            for ins in instructions:
                if not await self._from_browser(ins, forward):
                    return
            if forward:
                await self.guacd.send_raw("".join(forward).encode())

    async def _from_browser(self, ins: Instruction, forward: list[str]) -> bool:
        if ins[0] == "":
            # Tunnel-internal: answer pings, forward nothing to guacd.
            if len(ins) > 1 and ins[1] == "ping":
                await self._send_browser(encode(ins))
            return True
        if ins[0] == "disconnect":
            self._tee_client(ins)
            self.end(Ending("ended", "the user disconnected"))
            return False
        verdict, why = self.filter.check(ins)
        self._tee_client(ins)
        if verdict is Verdict.FORWARD:
            forward.append(encode(ins))
            return True
        if verdict is Verdict.REFUSE:
            log.info("session %s: refused %s: %s", self.session_id, ins[0], why)
            if ins[0] in ("clipboard", "file", "put"):
                stream = ins[2] if ins[0] == "put" else ins[1]
                await self._send_browser(encode(("ack", stream, why, str(int(Status.CLIENT_FORBIDDEN)))))
            return True
        self._violation(why)
        return False

    def _violation(self, why: str) -> None:
        security_log.warning("session %s: security violation from the browser: %s", self.session_id, why)
        self.end(Ending("terminated", f"security violation: {why}", Status.CLIENT_BAD_REQUEST,
                        f"The gateway refused a forbidden instruction ({why}); the session was ended.",
                        violation=why))

    # -- recording ----------------------------------------------------------

    def _tee_server(self, instructions: list[Instruction], wire: str) -> None:
        if self.recording_ok:
            try:
                self.recorder.server(instructions, wire)
            except RecordingError as exc:
                self._recording_failed(exc)

    def _tee_client(self, ins: Instruction) -> None:
        if self.recording_ok:
            try:
                self.recorder.client(ins)
            except RecordingError as exc:
                self._recording_failed(exc)

    def _recording_failed(self, exc: RecordingError) -> None:
        self.recording_ok = False
        log.error("session %s: recording failed: %s", self.session_id, exc)
        if self.fail_closed:
            self.end(Ending("failed", f"recording failed: {exc}", Status.SERVER_ERROR,
                            "The session recording could not be written, so the session was ended."))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            if self.recording_ok:
                try:
                    self.recorder.tick()
                except RecordingError as exc:
                    self._recording_failed(exc)

    # -- running --------------------------------------------------------------

    async def run(self) -> Ending:
        """Relay until one side ends; then close both, once. Returns why it ended."""
        tasks = [asyncio.create_task(self._guard(coro)) for coro in
                 (self._guacd_to_browser(), self._browser_to_guacd(), self._tick())]
        await self._done.wait()
        self.state = State.CLOSING
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close()
        self.state = State.CLOSED
        return self.ending

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except (OSError, ConnectionError) as exc:
            self.end(Ending("failed", f"connection to guacd lost: {exc}", Status.UPSTREAM_ERROR,
                            "The connection to the remote desktop was lost."))
        except ProtocolError as exc:
            self.end(Ending("failed", f"guacd sent malformed data: {exc}", Status.UPSTREAM_ERROR,
                            "The remote desktop gateway sent malformed data."))
        except WebSocketDisconnect:
            self.end(Ending("ended", "the user closed the browser session"))
        except Exception as exc:  # noqa: BLE001 - any other failure still ends the session cleanly
            log.exception("session %s: relay failed", self.session_id)
            self.end(Ending("failed", f"gateway error: {exc}", Status.SERVER_ERROR,
                            "The gateway failed; the session was ended."))

    async def _close(self) -> None:
        ending = self.ending
        # guacd keeps a connection alive while any user remains: watchers go with the owner.
        for watcher in self.watchers:
            watcher.end(Ending("ended", "the watched session ended", Status.SESSION_CLOSED,
                               "The session you were watching has ended."))
        await self.guacd.close()
        if self.recording_ok:
            try:
                self.recorder.finish(ending.reason)
            except RecordingError as exc:
                log.error("session %s: the recording could not be finished: %s", self.session_id, exc)
                self.recording_ok = False
        if self.ws.application_state == WebSocketState.CONNECTED and \
                self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                if ending.message:
                    await self._send_browser(encode(("error", ending.message, str(int(ending.code)))))
                await self.ws.close(code=1000, reason=str(int(ending.code)))
