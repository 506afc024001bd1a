"""The relay between one browser and guacd: whole instructions both ways, teed to the recorder.

An explicit state machine (``RUNNING`` -> ``CLOSING`` -> ``CLOSED``); whatever
ends the session first (the browser, guacd, a filter violation, a recording
failure, an auditor) wins, and both sides are closed exactly once.

Nothing crosses the relay that is not recorded first (issue 10, fail closed):

* guacd -> browser: a batch is written to the spool before the browser sees it;
* browser -> guacd: a batch is written (one write, straight to the OS) before
  any of it is forwarded; input that arrives before guacd's first ``sync`` (no
  timestamp yet) is held and forwarded right after that sync is written.

The first recording failure ends the session (unless the connection's policy
allows unrecorded sessions): ``ending`` is set before anything else can be
forwarded in either direction, guacd is dropped without another instruction,
and the browser is told why. Sealing segments (fsync) runs in a thread, so one
slow disk stalls no other session.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gui_recorder.errors import ProtocolError, RecordingError
from gui_recorder.gateway.filter import ClientFilter, Verdict, WatcherFilter
from gui_recorder.gateway.guard import SessionGuard, notice
from gui_recorder.guacd import GuacdConnection
from gui_recorder.guacd.status import Status, websocket_close_code
from gui_recorder.protocol import Instruction, Limits, Parser, encode
from gui_recorder.recording import SessionRecorder
from gui_recorder.vocabulary import RuleAction, SessionStatus

log = logging.getLogger(__name__)
security_log = logging.getLogger("gui_recorder.security")

# A browser sends small instructions; guacd's own limits bound them (parser-constants.h).
BROWSER_LIMITS = Limits(max_element_length=8192, max_elements=128, max_instruction_length=32768)
TICK_SECONDS = 1.0
# After a send finds the browser's socket closed, how long the receiving side has to report why
# (its close code: 1009 for an oversized message is a violation, not the user leaving).
BROWSER_GONE_GRACE_SECONDS = 5.0


class BrowserGone(Exception):
    """A send to the browser failed: its socket is closing or closed (the receive side knows why)."""


class BrowserStalled(BrowserGone):
    """A send to the browser did not complete in time: it stopped reading, and its buffers are full.
    A kind of BrowserGone, so that whoever tolerates a gone browser (a guardrail notice) tolerates it."""

# WebSocket close codes (RFC 6455) that mean the browser broke the protocol or a limit, not "the user left".
_WS_VIOLATIONS = {1002: "a WebSocket protocol error", 1003: "a message type the gateway does not accept",
                  1007: "a text message that is not valid UTF-8",
                  1009: "a WebSocket message over the gateway's size limit"}


# What a user does to the target (held under four eyes); acknowledgements and syncs still flow.
_INPUT = frozenset({"key", "mouse", "touch", "clipboard", "blob", "end", "file", "put", "get"})


class State(enum.Enum):
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass
class Ending:
    status: str  # a gui_recorder.vocabulary.SessionStatus
    reason: str  # for people: stored with the session
    code: int = Status.SUCCESS  # Guacamole status sent to the browser
    message: str = ""  # for the browser's `error` instruction
    violation: str | None = None  # set when the browser broke the protocol policy


class Relay:
    def __init__(self, websocket: WebSocket, guacd: GuacdConnection, recorder: SessionRecorder | None,
                 client_filter: ClientFilter | WatcherFilter, *, session_id: str, fail_closed: bool = True,
                 on_recording_failed: Callable[[str, RecordingError], None] | None = None,
                 username: str | None = None, guard: SessionGuard | None = None,
                 on_guard_hits: Callable[[SessionGuard, int | None], None] | None = None,
                 stall_seconds: float = 15.0):
        self.ws = websocket
        # A send pending this long means the browser stopped reading: the kernel's buffer and the
        # transport's (uvicorn waits while it is over 64 KiB) are full. It is disconnected, so a
        # stalled tab holds no more than those. (A browser that also stops acknowledging frames is
        # throttled and, after 15 s of silence, ended by guacd itself: status 776 from guacd.)
        self.stall_seconds = stall_seconds
        self.guacd = guacd
        self.recorder = recorder
        self.filter = client_filter
        self.session_id = session_id
        self.username = username  # whose relay (owner or watcher): a disabled account's relays are ended
        self.fail_closed = fail_closed
        self.on_recording_failed = on_recording_failed
        # Guardrails (issue 14): typed lines checked before their Enter is forwarded; None: no rules apply.
        self.guard = guard
        self.on_guard_hits = on_guard_hits
        self.window_end = None  # just-in-time access: when the approved window ends (a UTC datetime)
        self.window_warned = False
        self.identity: tuple[str, str, str, str] | None = None  # (session, user, role, connection) for new rules
        # Four eyes (issue 14): the user's input reaches the target only while an approver watches.
        self.four_eyes = False
        self.approver = False  # set on a watcher's relay whose user may approve access
        self._held_notice = False
        self.state = State.RUNNING
        self.ending: Ending | None = None
        self.bytes_to_client = 0
        self.bytes_from_client = 0
        self.from_guacd = 0  # instructions received from guacd: 0 means the target never answered
        # A watcher's relay has no recorder: the owner's session already records the screen.
        self.recording_ok = recorder is not None
        self.recording_error: str | None = None
        self.watchers: list[Relay] = []
        self.started = time.monotonic()
        self._held: list[str] = []  # input recorded with guacd's first sync, forwarded right after it
        self._send_lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._seal_wake = asyncio.Event()

    # -- ending -------------------------------------------------------------

    def end(self, ending: Ending) -> None:
        """Ask the session to end; the first reason wins."""
        if self.ending is None:
            self.ending = ending
        self._done.set()

    def terminate(self, by: str) -> None:
        self.end(Ending(SessionStatus.TERMINATED, f"terminated by {by}", Status.SESSION_CLOSED,
                        f"An auditor ({by}) ended this session."))

    def terminate_by_policy(self, rule: str) -> None:
        self.end(Ending(SessionStatus.TERMINATED, f"terminated by the guardrail rule {rule!r}",
                        Status.SESSION_CLOSED, f"A security policy ({rule}) ended this session."))

    def end_window(self) -> None:
        self.end(Ending(SessionStatus.TERMINATED, "the approved access window ended", Status.SESSION_CLOSED,
                        "Your approved access window has ended; the session was closed."))

    async def send_notice(self, text: str) -> None:
        """A message the user's client shows (a guardrail notice), outside the recording."""
        if self.state is State.RUNNING:
            with contextlib.suppress(BrowserGone):
                await self._send_browser(notice(text))

    def end_for_shutdown(self) -> None:
        self.end(Ending(SessionStatus.ENDED, "the gateway was stopped", Status.SESSION_CLOSED,
                        "The gateway is shutting down; the session was ended."))

    def _user_left(self, reason: str) -> Ending:
        if self.from_guacd == 0 and self.recorder is not None:
            waited = time.monotonic() - self.started
            return Ending(SessionStatus.FAILED, f"the remote desktop never answered: nothing came from guacd "
                          f"in {waited:.1f} s, then {reason}", Status.UPSTREAM_TIMEOUT)
        return Ending(SessionStatus.ENDED, reason)

    def _browser_closed(self, code: int | None) -> Ending:
        if code in _WS_VIOLATIONS:
            return self._violation_ending(f"protocol limit: {_WS_VIOLATIONS[code]} (WebSocket close {code})")
        if code == 1006:
            return self._user_left("the browser's connection dropped without a WebSocket close (1006)")
        if code in (None, 1000, 1001, 1005):
            return self._user_left("the user closed the browser session")
        return self._user_left(f"the browser closed the session (WebSocket close {code})")

    # -- the two directions -------------------------------------------------

    async def _send_browser(self, text: str) -> None:
        async with self._send_lock:
            try:
                async with asyncio.timeout(self.stall_seconds):
                    await self.ws.send_text(text)
            except TimeoutError as exc:  # before OSError, of which it is a subclass
                raise BrowserStalled(f"a send of {len(text)} characters waited {self.stall_seconds:g} s") from exc
            except (RuntimeError, OSError, WebSocketDisconnect) as exc:
                # uvicorn refuses a send after it closed the socket itself (e.g. a message over
                # ws_max_size): that is not the gateway failing, and not yet the reason.
                raise BrowserGone(str(exc)) from exc

    async def _send_guacd(self, text: str) -> None:
        if self.ending is None:  # whatever ended the session, nothing more reaches the target
            await self.guacd.send_raw(text.encode())

    async def _guacd_to_browser(self) -> None:
        while True:
            instructions, wire = await self.guacd.read_wire()
            if not instructions:
                if self.from_guacd == 0:
                    self.end(Ending(SessionStatus.FAILED, "guacd closed the connection before the remote desktop "
                                    "sent anything", Status.UPSTREAM_ERROR,
                                    "The remote desktop could not be reached."))
                else:
                    self.end(Ending(SessionStatus.ENDED, "the remote desktop closed the session"))
                return
            self.from_guacd += len(instructions)
            if not self._tee_server(instructions, wire) or self.ending is not None:
                return  # e.g. the recording failed: what it could not record is not shown
            if self._held and self.recorder.has_clock:
                # Written with this batch (guacd's first sync gave them a timestamp): forward them now,
                # synchronously before any await, so later input cannot overtake them.
                held, self._held = "".join(self._held), []
                await self._send_guacd(held)
            await self._send_browser(wire)
            self.bytes_to_client += len(wire)
            for ins in instructions:
                if ins[0] == "error":
                    code = int(ins[2]) if len(ins) > 2 and ins[2].isdigit() else Status.SERVER_ERROR
                    message = ins[1] if len(ins) > 1 else ""
                    # The browser already has guacd's `error`; only the close reason remains.
                    self.end(Ending(SessionStatus.FAILED, f"guacd error {code}: {message}", code))
                    return

    async def _browser_to_guacd(self) -> None:
        parser = Parser(BROWSER_LIMITS)
        while True:
            # `receive`, not `receive_text`: after a send to the browser failed, Starlette refuses
            # `receive_text`, yet what the browser sent before it closed is still queued, and it
            # is the session (a paste and a disconnect in one breath lost the paste, and the
            # session was recorded as a gateway failure).
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.end(self._browser_closed(message.get("code", 1000)))
                return
            text = message.get("text")
            if text is None:
                # A binary frame: guacamole-common-js never sends one.
                self._violation("binary WebSocket message")
                return
            self.bytes_from_client += len(text)
            try:
                instructions = parser.feed_text(text)
            except ProtocolError as exc:
                self._violation(f"malformed instruction: {exc}")
                return
            await self._relay_batch(instructions)
            if self.ending is not None:
                return

    async def _relay_batch(self, instructions: list[Instruction]) -> None:
        """One browser message: decide each instruction, record the batch once, then forward it."""
        record: list[Instruction] = []
        forward: list[str] = []
        replies: list[str] = []
        stop: Ending | None = None
        for ins in instructions:
            if ins[0] == "":
                # Tunnel-internal: answer pings, forward nothing to guacd.
                if len(ins) > 1 and ins[1] == "ping":
                    replies.append(encode(ins))
                continue
            record.append(ins)
            if ins[0] == "disconnect":
                stop = self._user_left("the user disconnected")
                break
            verdict, why = self.filter.check(ins)
            if verdict is Verdict.FORWARD and self.four_eyes and ins[0] in _INPUT and not self.watched_by_approver:
                record.pop()  # never reaches the target: not recorded as input
                if not self._held_notice:
                    self._held_notice = True
                    replies.append(notice("This connection needs an approver watching live: your input is held "
                                          "until one joins."))
                continue
            if verdict is Verdict.FORWARD and self.guard is not None and ins[0] == "key":
                checked = self.guard.key(ins)
                if not checked.forward:
                    # Never reaches the target, so not recorded as input; the attempt is recorded in its place.
                    record.pop()
                    if checked.hits:
                        stop = stop or self._withheld(checked.hits, record, replies)
                    continue
            if verdict is Verdict.FORWARD and self.guard is not None and ins[0] in ("clipboard", "blob", "end"):
                pasted = self.guard.pasted(ins)
                terminate = next((h for h in pasted if h.rule.action == RuleAction.TERMINATE), None)
                if terminate is not None:
                    stop = stop or Ending(SessionStatus.TERMINATED, f"terminated by the guardrail rule "
                                          f"{terminate.rule.name!r} on pasted text", Status.SESSION_CLOSED,
                                          f"A security policy ({terminate.rule.name}) ended this session.")
                    forward = []  # the end of that paste does not reach the target
                    break
            if verdict is Verdict.FORWARD:
                forward.append(encode(ins))
            elif verdict is Verdict.REFUSE:
                log.info("session %s: refused %s: %s", self.session_id, ins[0], why)
                if ins[0] in ("clipboard", "file", "put"):
                    stream = ins[2] if ins[0] == "put" else ins[1]
                    replies.append(encode(("ack", stream, why, str(int(Status.CLIENT_FORBIDDEN)))))
            else:
                stop = self._violation_ending(why)
                forward = []  # nothing of a batch that broke the policy reaches guacd
                break
        written = self._tee_client(record)
        if self.guard is not None and self.guard.pending and self.on_guard_hits is not None:
            self.on_guard_hits(self.guard, self._offset_ms())
        if written is False:
            return  # the recording failed: nothing of this batch is forwarded
        if forward:
            if written is None or self._held:
                self._held.extend(forward)
            else:
                await self._send_guacd("".join(forward))
        for reply in replies:
            await self._send_browser(reply)
        if stop is not None:
            if stop.violation:
                security_log.warning("session %s: security violation from the browser: %s",
                                     self.session_id, stop.violation)
            self.end(stop)

    @property
    def watched_by_approver(self) -> bool:
        return any(w.approver for w in self.watchers)

    async def approver_joined(self) -> None:
        if self.four_eyes:
            self._held_notice = False
            await self.send_notice("An approver is watching: your input now reaches the remote desktop.")

    def _withheld(self, hits, record: list, replies: list[str]) -> Ending | None:
        """A line a rule stopped: a marker in the recording, a notice to the user, and for `terminate` the end."""
        worst = next((h for h in hits if h.rule.action == RuleAction.TERMINATE), None) or \
            next(h for h in hits if h.rule.action == RuleAction.BLOCK)
        record.append(Instruction("gr-guardrail", worst.rule.action, worst.rule.name, worst.text))
        if worst.rule.action == RuleAction.TERMINATE:
            return Ending(SessionStatus.TERMINATED, f"terminated by the guardrail rule {worst.rule.name!r}: "
                          f"typed {worst.text!r}", Status.SESSION_CLOSED,
                          f"A security policy ({worst.rule.name}) ended this session; the line was not sent.")
        replies.append(notice(f"Blocked by policy \"{worst.rule.name}\": this command was not sent to the "
                              "remote desktop. The attempt has been recorded."))
        return None

    def _offset_ms(self) -> int | None:
        """Now, in the recording's time (for the player's marker)."""
        if self.recorder is None or not self.recorder.has_clock or self.recorder.first_ts is None:
            return None
        return max(0, self.recorder.now_ts() - self.recorder.first_ts)

    def _violation_ending(self, why: str) -> Ending:
        return Ending(SessionStatus.TERMINATED, f"security violation: {why}", Status.CLIENT_BAD_REQUEST,
                      f"The gateway refused a forbidden instruction ({why}); the session was ended.",
                      violation=why)

    def _violation(self, why: str) -> None:
        security_log.warning("session %s: security violation from the browser: %s", self.session_id, why)
        self.end(self._violation_ending(why))

    # -- recording ----------------------------------------------------------

    def _tee_server(self, instructions: list[Instruction], wire: str) -> bool:
        """Record guacd's batch; False when relaying must stop (the recording failed, fail closed)."""
        if not self.recording_ok:
            return self.recorder is None or not self.fail_closed
        try:
            self.recorder.server(instructions, wire)
        except RecordingError as exc:
            self._recording_failed(exc)
            return not self.fail_closed
        if self.recorder.spool.unsealed:
            self._seal_wake.set()
        return True

    def _tee_client(self, instructions: list[Instruction]) -> bool | None:
        """Record the browser's batch: True on disk, None held for guacd's first sync, False: stop."""
        if not self.recording_ok:
            return False if (self.recorder is not None and self.fail_closed) else True
        try:
            written = self.recorder.client_batch(instructions)
        except RecordingError as exc:
            self._recording_failed(exc)
            return False if self.fail_closed else True
        if self.recorder.spool.unsealed:
            self._seal_wake.set()
        return True if written else None

    def _recording_failed(self, exc: RecordingError) -> None:
        if not self.recording_ok:
            return
        self.recording_ok = False
        self.recording_error = str(exc)
        log.error("session %s: recording failed: %s", self.session_id, exc)
        if self.on_recording_failed:
            self.on_recording_failed(self.session_id, exc)
        if self.fail_closed:
            self._held = []
            self.end(Ending(SessionStatus.FAILED, f"recording failed: {exc}", Status.SERVER_ERROR,
                            "The session recording could not be written, so the session was ended. "
                            "Nothing more was sent to the remote desktop."))

    async def _seal_loop(self) -> None:
        """Rotate old segments and seal them in a thread; runs until the relay closes (never cancelled
        mid-seal, so ``finish`` never races a seal)."""
        while self.state is State.RUNNING:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._seal_wake.wait(), TICK_SECONDS)
            self._seal_wake.clear()
            if self.state is not State.RUNNING or not self.recording_ok:
                return
            if self.recorder.tick():
                try:
                    await asyncio.to_thread(self.recorder.seal_pending)
                except RecordingError as exc:
                    self._recording_failed(exc)

    # -- running --------------------------------------------------------------

    async def run(self) -> Ending:
        """Relay until one side ends; then close both, once. Returns why it ended."""
        tasks = [asyncio.create_task(self._guard(coro)) for coro in (self._guacd_to_browser(),
                                                                      self._browser_to_guacd())]
        sealer = asyncio.create_task(self._guard(self._seal_loop())) if self.recorder is not None else None
        try:
            await self._done.wait()
        finally:
            self.state = State.CLOSING
            for task in tasks:
                task.cancel()
            self._seal_wake.set()
            await asyncio.gather(*tasks, *([sealer] if sealer else []), return_exceptions=True)
            if self.ending is None:  # cancelled from outside (the server is going away)
                self.end_for_shutdown()
            await self._close()
            self.state = State.CLOSED
        return self.ending

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except WebSocketDisconnect as exc:
            self.end(self._browser_closed(exc.code))
        except BrowserStalled as exc:
            self.end(Ending(SessionStatus.FAILED, f"the browser stopped reading ({exc}); disconnected",
                            Status.CLIENT_TIMEOUT))
        except BrowserGone as exc:
            # The receiving side learns the close code and ends the session with the true reason;
            # only if it says nothing in a moment is the reason this one.
            try:
                await asyncio.wait_for(self._done.wait(), BROWSER_GONE_GRACE_SECONDS)
            except TimeoutError:
                self.end(self._user_left(f"the browser's connection closed under a send ({exc})"))
        except (OSError, ConnectionError) as exc:
            self.end(Ending(SessionStatus.FAILED, f"connection to guacd lost: {exc}", Status.UPSTREAM_ERROR,
                            "The connection to the remote desktop was lost."))
        except ProtocolError as exc:
            self.end(Ending(SessionStatus.FAILED, f"guacd sent malformed data: {exc}", Status.UPSTREAM_ERROR,
                            "The remote desktop gateway sent malformed data."))
        except Exception as exc:  # noqa: BLE001 - any other failure still ends the session cleanly
            log.exception("session %s: relay failed", self.session_id)
            self.end(Ending(SessionStatus.FAILED, f"gateway error: {exc}", Status.SERVER_ERROR,
                            "The gateway failed; the session was ended."))

    async def _close(self) -> None:
        ending = self.ending
        # guacd keeps a connection alive while any user remains: watchers go with the owner.
        for watcher in self.watchers:
            watcher.end(Ending(SessionStatus.ENDED, "the watched session ended", Status.SESSION_CLOSED,
                               "The session you were watching has ended."))
        # After a recording failure not even our own `disconnect` reaches guacd: it sees the socket close.
        await self.guacd.close(disconnect=self.recording_ok or self.recorder is None)
        if self.recorder is not None:
            if self.recording_ok:
                try:
                    await asyncio.to_thread(self.recorder.finish, ending.reason)
                except RecordingError as exc:
                    log.error("session %s: the recording could not be finished: %s", self.session_id, exc)
                    self._recording_failed(exc)
            if not self.recording_ok:
                # What reached the disk stays; the recording service seals and uploads it once it can.
                self.recorder.spool.abandon()
        if self.ws.application_state == WebSocketState.CONNECTED and \
                self.ws.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                if ending.message and ending.code != Status.CLIENT_TIMEOUT:  # a stalled browser reads nothing
                    await self._send_browser(encode(("error", ending.message, str(int(ending.code)))))
                async with asyncio.timeout(self.stall_seconds):
                    await self.ws.close(code=websocket_close_code(ending.code), reason=str(int(ending.code)))
