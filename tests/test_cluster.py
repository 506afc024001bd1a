"""Two gateways on one database, several guacd (issue 17, items 2 and 3), with real processes.

The session fixture's gateway runs in this process; the peer is a real
`gui-recorder serve` process on the same database and buckets, with its own spool
and name, and a guacd pool of two: a dead address first, then a second real guacd.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from conftest import wait_for
from gui_recorder.db import Session
from gui_recorder.protocol import Parser, parse_all
from gui_recorder.stack import Stack
from gui_recorder.stack.process import free_port
from gui_recorder.text.keys import decode_keys
from gui_recorder.vocabulary import SessionStatus
from support.clients import TunnelClient, tunnel_url
from support.peers import Peer

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def second_guacd(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("guacd2"), guacd=True, minio=False, vnc=False, rdp=False) as running:
        yield running.info.guacd


@pytest.fixture(scope="module")
def peer(gateway, second_guacd, tmp_path_factory):
    dead = free_port()  # nothing listens here: the pool must pass over it
    with Peer.beside(gateway, tmp_path_factory.mktemp("peer"), GUI_RECORDER_GATEWAY_ID="peer",
                     GUI_RECORDER_GUACD_ADDRESSES=f"127.0.0.1:{dead},{second_guacd.host}:{second_guacd.port}",
                     GUI_RECORDER_GUACD_CONNECT_TIMEOUT_SECONDS="2",
                     GUI_RECORDER_GATEWAY_CONTROL_POLL_SECONDS="0.5") as peer:
        yield peer


def row(gateway, session_id: str) -> Session:
    with gateway.app.state.services.db.session() as s:
        return s.get(Session, session_id)


async def open_session(url: str, api: httpx.Client, connection: str = "demo-vnc") -> TunnelClient:
    token = api.post(f"/api/connections/{connection}/tunnel-token").raise_for_status().json()["token"]
    client = await TunnelClient.open(url, token)
    await client.first_frame()
    return client


async def test_a_session_is_watched_and_ended_through_the_other_gateway(gateway, peer):
    with gateway.api("vendor") as vendor:
        owner = await open_session(gateway.url, vendor)
    sid = owner.session_id
    here = row(gateway, sid)
    assert here.gateway_id == gateway.app.state.services.gateway_id != "peer"
    assert here.guacd_address == f"{gateway.settings.guacd_host}:{gateway.settings.guacd_port}"

    with peer.api("auditor") as auditor:
        token = auditor.post(f"/api/sessions/{sid}/watch-token").raise_for_status().json()["token"]
    watcher = await TunnelClient.open(peer.url, token, path="api/watch")
    try:
        await watcher.first_frame()  # joined on the owner's guacd, through a gateway that does not relay it
        async with websockets.connect(tunnel_url(peer.url, token, path="api/watch"),
                                      subprotocols=["guacamole"]) as again:
            refused = Parser().feed_text(await again.recv())[0]
        assert refused[0] == "error" and "used" in refused[1], "a watch token opens one watch, once"
        with peer.api("auditor") as auditor:
            answer = auditor.post(f"/api/sessions/{sid}/terminate", json={"reason": "seen from the peer"})
        assert answer.status_code == 202 and answer.json()["gateway"] == here.gateway_id
        await owner.wait_closed(30)  # the owner's gateway ended it
        await watcher.wait_closed(30)  # and the peer ended its watcher with it
    finally:
        await watcher.close()
        await owner.close()
    ended = await asyncio.to_thread(wait_for, lambda: (r := row(gateway, sid)).status != SessionStatus.ACTIVE and r,
                                    30, 0.2, "the session's end")
    assert ended.status == SessionStatus.TERMINATED
    assert "auditor auditor: seen from the peer" in ended.end_reason
    with gateway.api("admin") as admin:
        events = admin.get("/api/audit", params={"limit": 200}).json()
    mine = [(e["action"], e["detail"]) for e in events if e["target"] == sid]
    assert ("session.terminate", {"reason": "seen from the peer", "gateway": here.gateway_id}) in mine
    assert ("session.watch", {"via": "peer"}) in mine


async def test_a_dead_guacd_is_passed_over_and_a_killed_gateway_recovers_only_its_own(gateway, peer, second_guacd):
    health = httpx.get(peer.url + "api/health").json()
    assert health["components"]["guacd"] == {"status": "degraded", "answering": 1, "configured": 2}
    with gateway.api("vendor") as vendor:
        elsewhere = await open_session(gateway.url, vendor)
    with peer.api("vendor") as vendor:
        doomed = await open_session(peer.url, vendor)
    try:
        await doomed.type("echo recovered\n")
        theirs, ours = row(gateway, elsewhere.session_id), row(gateway, doomed.session_id)
        assert ours.gateway_id == "peer" and ours.guacd_address == f"{second_guacd.host}:{second_guacd.port}"
        assert theirs.guacd_address != ours.guacd_address

        peer.kill()
        await doomed.wait_closed(30)
        assert row(gateway, doomed.session_id).status == SessionStatus.ACTIVE, "nobody has looked at it yet"
        await asyncio.to_thread(peer.start)
        gone = await asyncio.to_thread(
            wait_for, lambda: (r := row(gateway, doomed.session_id)).recording_complete and r, 90, 0.3,
            "the killed gateway's recording, recovered from its spool and uploaded")
        assert gone.status == SessionStatus.INTERRUPTED
        # The other gateway's session lives on, untouched by the peer's recovery.
        assert row(gateway, elsewhere.session_id).status == SessionStatus.ACTIVE
        assert not elsewhere._task.done()
        await elsewhere.type("echo still here\n")
    finally:
        await doomed.close()
        await elsewhere.disconnect()
    with gateway.api("admin") as admin:
        recording = admin.get(f"/api/sessions/{doomed.session_id}/recording").raise_for_status().content
    typed = [line.text for line in decode_keys(parse_all(recording))]
    assert "echo recovered" in typed, f"what was typed before the kill is in the recording: {typed}"
