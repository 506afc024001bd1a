"""A browser that stops reading (issue 16): it is disconnected, the row tells why, the recording is complete.

On the real stack guacd sees it first: a browser that reads nothing acknowledges no frame, so guacd
throttles what it sends and, after 15 s without a word from the browser, ends it (776, "not
responding"). The gateway's own bound (``browser_stall_seconds``) is for a browser whose sends go
on while its reading has stopped, which only a stand-in can do: the relay-level test at the end."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest
import websockets
from starlette.websockets import WebSocketState

from conftest import wait_for
from gui_recorder.db.models import Session
from gui_recorder.protocol import Parser
from gui_recorder.text.keys import keystroke
from support.clients import tunnel_url
from support.peers import Peer


STALL_SECONDS = 2


@pytest.mark.stack
async def test_a_browser_that_stops_reading_is_disconnected_and_the_session_says_why(gateway, worker, tmp_path):
    """Real gateway process, real guacd and OpenSSH (its shell ends with the session, so the flood does
    not outlive the test, as it would in the shared VNC desktop's xterm); a real WebSocket client that stops
    reading, with a small receive buffer."""
    with Peer.beside(gateway, tmp_path / "peer", GUI_RECORDER_BROWSER_STALL_SECONDS=str(STALL_SECONDS)) as peer:
        with peer.api("vendor") as vendor:
            token = vendor.post("/api/connections/demo-ssh/tunnel-token").raise_for_status().json()["token"]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window stays small
        sock.connect(("127.0.0.1", int(peer.url.rsplit(":", 1)[1].strip("/"))))
        # max_queue=1: the client library stops reading the socket as soon as one message waits unread.
        ws = await websockets.connect(tunnel_url(peer.url, token), sock=sock, subprotocols=["guacamole"],
                                      max_size=None, max_queue=1, ping_interval=None)
        try:
            session_id = Parser().feed_text(await ws.recv())[0][1]
            parser, seen = Parser(), []
            while not any(ins[0] == "sync" for ins in seen):  # the terminal is up
                seen += parser.feed_text(await asyncio.wait_for(ws.recv(), 60))
            # A flood of screen updates (a scrolling terminal); from here on this browser reads nothing.
            await ws.send("".join(map(keystroke, "yes gr-stall-flood\n")))
            started = time.monotonic()

            def ended():
                with gateway.app.state.services.db.session() as s:
                    row = s.get(Session, session_id)
                    return row if row.status != "active" and row.recording_complete else None

            row = await asyncio.to_thread(wait_for, ended, 90, 0.2, "the stalled session's end")
            waited = time.monotonic() - started
        finally:
            sock.close()
            await ws.close()
        assert row.status == "failed", (row.status, row.end_reason)
        # Whichever came first (guacd's, in every run so far): each says the browser stopped.
        assert row.end_reason.startswith(("guacd error 776", "the browser stopped reading")), row.end_reason
        assert waited >= STALL_SECONDS  # not before the bound: a slow moment is not a stall
        log = peer.log.read_text()
    with gateway.api("auditor") as auditor:  # the recording has what the user did before it stalled
        def typed():
            items = auditor.get(f"/api/sessions/{session_id}/text").json()["items"]
            return [i for i in items if "gr-stall-flood" in i["text"]]

        assert await asyncio.to_thread(wait_for, typed, 180, 1, "the typed command in the session's text"), log[-2000:]

    def flood_gone() -> bool:  # nothing of it is left to disturb the tests after this one
        return subprocess.run(["pgrep", "-f", "yes gr-stall-flood"], capture_output=True).returncode == 1

    await asyncio.to_thread(wait_for, flood_gone, 30, 0.2, "the flood's shell to end with the session")


class StalledBrowser:
    """Fault injection, a STAND-IN for a browser whose reading stopped while its sending goes on: every
    send to it waits forever (its socket's buffers are full); it keeps its socket open and says nothing."""

    application_state = client_state = WebSocketState.CONNECTED

    def __init__(self):
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def receive(self) -> dict:
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code


async def test_a_browser_whose_sends_wait_past_the_bound_is_ended_with_why():
    from test_relay_races import ChattyGuacd

    from gui_recorder.gateway.filter import ClientFilter, ClientPolicy
    from gui_recorder.gateway.relay import Relay
    from gui_recorder.guacd.status import Status, websocket_close_code

    guacd, browser = ChattyGuacd(), StalledBrowser()
    relay = Relay(browser, guacd, None, ClientFilter(ClientPolicy()), session_id="stalled", stall_seconds=0.3)
    started = time.monotonic()
    ending = await asyncio.wait_for(relay.run(), 10)
    assert (ending.status, ending.code) == ("failed", Status.CLIENT_TIMEOUT), ending
    assert ending.reason.startswith("the browser stopped reading") and "0.3 s" in ending.reason
    assert time.monotonic() - started >= 0.3 and guacd.closed
    assert browser.closed_with == websocket_close_code(Status.CLIENT_TIMEOUT)
