"""Four eyes on the real VNC target: the vendor's input reaches the desktop only while an approver watches."""

from __future__ import annotations

import asyncio
import pwd
import secrets
from pathlib import Path

import pytest
import websockets

from conftest import wait_for
from support.clients import TunnelClient


@pytest.fixture
def four_eyes_connection(gateway, stack):
    spec = {"id": "four-eyes-vnc", "name": "Four eyes VNC", "protocol": "vnc", "host": stack.vnc.host,
            "port": stack.vnc.port, "password": stack.vnc.password, "allowed_users": ["vendor"],
            "recording_policy": {"four_eyes": True}}
    with gateway.api("admin") as admin:
        admin.post("/api/admin/connections", json=spec).raise_for_status()
        yield spec["id"]
        admin.delete(f"/api/admin/connections/{spec['id']}")


async def _watch(gateway, session_id: str) -> TunnelClient:
    with gateway.api("admin") as admin:
        token = admin.post(f"/api/sessions/{session_id}/watch-token").raise_for_status().json()["token"]
    ws = await websockets.connect(gateway.url.replace("http", "ws", 1) + f"api/watch?token={token}",
                                  subprotocols=["guacamole"], max_size=None)
    watcher = TunnelClient(ws)
    watcher.session_id = watcher.parser.feed_text(await ws.recv())[0][1]
    watcher._task = asyncio.create_task(watcher._pump())
    return watcher


async def test_input_is_held_until_an_approver_watches(gateway, stack, four_eyes_connection):
    tag = secrets.token_hex(4)
    home = Path(pwd.getpwnam(stack.demo_user).pw_dir)
    before, after = home / f"gr-4e-before-{tag}", home / f"gr-4e-after-{tag}"
    with gateway.api("vendor") as vendor:
        token = vendor.post(f"/api/connections/{four_eyes_connection}/tunnel-token").raise_for_status().json()["token"]
    client = await TunnelClient.open(gateway.url, token, keep=True)
    watcher = None
    try:
        await client.first_frame()
        await asyncio.sleep(1.0)
        await client.type(f"touch ~/{before.name}\n")
        await asyncio.to_thread(wait_for, lambda: any(i[0] == "gr-notice" for i in client.seen), 10, 0.1,
                                "the held-input notice")
        watcher = await _watch(gateway, client.session_id)
        await asyncio.to_thread(wait_for, lambda: any("approver is watching" in i[2] for i in client.seen
                                                      if i[0] == "gr-notice"), 10, 0.1, "the approver's arrival")
        await client.type(f"touch ~/{after.name}\n")
        await asyncio.to_thread(wait_for, after.exists, 60, 0.2, "the input after the approver joined")
        assert not before.exists(), "input typed before an approver watched reached the target"
    finally:
        if watcher is not None:
            await watcher.close()
        await client.disconnect()
        for path in (before, after):
            path.unlink(missing_ok=True)
