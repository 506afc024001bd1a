"""The relay's ending when both directions fail at once: the true reason wins, not the first exception.

uvicorn closes a browser's socket itself when a message is over ``ws_max_size``
(close 1009) and then refuses any further send with a RuntimeError; the
guacd->browser direction may hit that refusal before the receive side has read
the close code. The full-stack test (tests/test_faults.py) meets this race only
sometimes; here it is forced. Both ends are STAND-INS injecting that fault: a
browser socket that refuses sends after closing, and a guacd that keeps sending
frames. No recorder: this is about the ending only.
"""

from __future__ import annotations

import asyncio

from starlette.websockets import WebSocketState

from gui_recorder.gateway.filter import ClientFilter, ClientPolicy
from gui_recorder.gateway.relay import Relay
from gui_recorder.protocol import Parser, encode
from gui_recorder.vocabulary import SessionStatus


class ClosedByServerSocket:
    """Fault injection: the server closed the socket (1009); sends are refused at once, and the
    receive side reports the close code only a little later."""

    application_state = WebSocketState.DISCONNECTED
    client_state = WebSocketState.DISCONNECTED

    def __init__(self, report_after: float):
        self.report_after = report_after

    async def send_text(self, text: str) -> None:
        raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.")

    async def receive(self) -> dict:
        await asyncio.sleep(self.report_after)
        return {"type": "websocket.disconnect", "code": 1009}

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


class ChattyGuacd:
    """Fault injection: a guacd that keeps sending frames (the real one would, while the user works)."""

    connection_id = "$stand-in"

    def __init__(self):
        self.sent: list[bytes] = []
        self.closed = False

    async def read_wire(self):
        await asyncio.sleep(0.001)
        wire = encode(("sync", "1"))
        return Parser().feed_text(wire), wire

    async def send_raw(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, *, disconnect: bool = True) -> None:
        self.closed = True


async def test_a_refused_send_waits_for_the_close_code():
    guacd = ChattyGuacd()
    relay = Relay(ClosedByServerSocket(report_after=0.2), guacd, None, ClientFilter(ClientPolicy()),
                  session_id="race")
    ending = await asyncio.wait_for(relay.run(), 10)
    assert ending.status == SessionStatus.TERMINATED, ending
    assert "1009" in ending.reason and "size limit" in ending.reason
    assert guacd.closed


async def test_a_socket_that_never_reports_still_ends_the_session(monkeypatch):
    from gui_recorder.gateway import relay as relay_module

    monkeypatch.setattr(relay_module, "BROWSER_GONE_GRACE_SECONDS", 0.1)
    relay = Relay(ClosedByServerSocket(report_after=60), ChattyGuacd(), None, ClientFilter(ClientPolicy()),
                  session_id="silent")
    ending = await asyncio.wait_for(relay.run(), 10)
    assert ending.status == SessionStatus.ENDED and "closed under a send" in ending.reason


def _starlette_socket(queued: list[str]):
    """Starlette's own WebSocket over a STAND-IN ASGI server injecting the fault: every send to the
    browser fails (its connection is gone), while what the browser sent before it closed is still
    queued, followed by its close (1000)."""
    from starlette.websockets import WebSocket

    messages = [{"type": "websocket.connect"}, *({"type": "websocket.receive", "text": t} for t in queued),
                {"type": "websocket.disconnect", "code": 1000}]
    sends_failed = asyncio.Event()

    async def receive():
        if len(messages) < len(queued) + 2:
            await sends_failed.wait()  # the queued input is read only after a send has failed
        return messages.pop(0)

    async def send(message):
        if message["type"] == "websocket.send":
            sends_failed.set()
            raise OSError("the browser's connection is gone")

    return WebSocket({"type": "websocket", "path": "/tunnel", "headers": []}, receive, send)


async def test_input_queued_before_the_browser_left_still_reaches_guacd_after_a_failed_send():
    """A paste and a disconnect in one breath: Starlette refuses `receive_text` once a send failed,
    and the relay used it, so the paste was lost and the session recorded as a gateway failure."""
    paste = encode(("clipboard", "0", "text/plain")) + encode(("blob", "0", "cGFzdGU=")) + encode(("end", "0"))
    ws = _starlette_socket([paste])
    await ws.accept()
    guacd = ChattyGuacd()
    relay = Relay(ws, guacd, None, ClientFilter(ClientPolicy()), session_id="paste-and-go")
    ending = await asyncio.wait_for(relay.run(), 10)
    assert paste.encode() in b"".join(guacd.sent)
    assert (ending.status, ending.reason) == (SessionStatus.ENDED, "the user closed the browser session"), ending
