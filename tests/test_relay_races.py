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

from starlette.websockets import WebSocketDisconnect, WebSocketState

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

    async def receive_text(self) -> str:
        await asyncio.sleep(self.report_after)
        raise WebSocketDisconnect(code=1009)

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
