"""Text typed in a running session is searchable while the session still runs."""

from __future__ import annotations

import asyncio
import secrets
import time

from support.clients import TunnelClient


async def test_phrase_typed_in_a_live_session_is_found_before_it_ends(gateway, worker):
    phrase = "livewire" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(6))
    with gateway.api("vendor") as vendor:
        token = vendor.post("/api/connections/demo-vnc/tunnel-token").json()["token"]
    async with await TunnelClient.open(gateway.url, token) as client:
        session_id = client.session_id
        await client.first_frame()
        await client.type(f"echo {phrase}\n")
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
        await client.disconnect()
