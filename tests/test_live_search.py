"""Text typed in a running session is searchable while the session still runs."""

from __future__ import annotations

import asyncio
import secrets
import time

import websockets

from gui_recorder.protocol import Parser, encode
from gui_recorder.text.keys import keystroke


async def test_phrase_typed_in_a_live_session_is_found_before_it_ends(gateway, worker):
    phrase = "livewire" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(6))
    with gateway.api("vendor") as vendor:
        token = vendor.post("/api/connections/demo-vnc/tunnel-token").json()["token"]
    url = gateway.url.replace("http", "ws", 1) + f"api/tunnel?token={token}&width=1024&height=768&dpi=96"
    async with websockets.connect(url, subprotocols=["guacamole"], max_size=None) as ws:
        parser = Parser()
        session_id = parser.feed_text(await ws.recv())[0][1]

        async def pump():
            async for message in ws:
                for ins in parser.feed_text(message):
                    if ins[0] == "sync":
                        await ws.send(encode(("sync", ins[1])))

        reader = asyncio.create_task(pump())
        await asyncio.sleep(1)
        for ch in f"echo {phrase}\n":
            await ws.send(keystroke(ch))
            await asyncio.sleep(0.03)
        typed_at = time.monotonic()
        found = None
        with gateway.api("auditor") as auditor:
            while found is None and time.monotonic() - typed_at < 90:
                await asyncio.sleep(1)
                body = (await asyncio.to_thread(auditor.get, "/api/search", params={"q": phrase})).json()
                found = next((r for r in body.get("results", []) if r["session_id"] == session_id), None)
            row = (await asyncio.to_thread(auditor.get, f"/api/sessions/{session_id}")).json()
        assert found is not None, "the live session's text never became searchable"
        assert row["status"] == "active", "found while the session was still running"
        print(f"live search latency: {time.monotonic() - typed_at:.1f} s after typing")
        await ws.send(encode(("disconnect",)))
        reader.cancel()
