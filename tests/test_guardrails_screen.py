"""A `terminate` rule on screen text ends a real VNC session: the worker's live OCR pass raises it,
the gateway carrying the session ends it."""

from __future__ import annotations

import asyncio
import secrets
import time

from conftest import wait_for
from support.clients import TunnelClient


async def test_a_terminate_rule_on_screen_text_ends_the_vnc_session(gateway, worker):
    # Letters OCR cannot confuse (no l/1, o/0), as the search tests use: the word is exact on screen.
    word = "forbid" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(6))
    rule = {"name": f"screen stop {word}", "match_kind": "words", "match_value": [word], "source": "screen",
            "severity": "critical", "action": "terminate", "scope": {"users": ["vendor"], "connections": ["demo-vnc"]}}
    with gateway.api("admin") as admin:
        created = admin.post("/api/admin/policies", json=rule).raise_for_status().json()
    try:
        with gateway.api("vendor") as vendor:
            token = vendor.post("/api/connections/demo-vnc/tunnel-token").raise_for_status().json()["token"]
        client = await TunnelClient.open(gateway.url, token, keep=True)
        try:
            await client.first_frame()
            await asyncio.sleep(1.0)
            await client.type(f"echo {word}\n")
            shown = time.time()
            await client.wait_closed(timeout=90)
        finally:
            await client.close()
        print(f"screen text on screen -> session ended: {client.closed_at - shown:.1f} s (target <= 10 s)")
        assert client.error is not None and created["name"] in client.error[1], client.error
        with gateway.api("auditor") as auditor:
            row = wait_for(lambda: (r := auditor.get(f"/api/sessions/{client.session_id}").json())["status"]
                           != "active" and r, 30, 0.2, "the session's end")
            assert row["status"] == "terminated" and created["name"] in row["end_reason"], row
            found = auditor.get("/api/alerts", params={"session": client.session_id}).json()["alerts"]
            assert [a["source"] for a in found] and all(a["source"] == "screen" for a in found), found
            assert found[0]["action"] == "terminate" and word in found[0]["text"].lower()
            assert found[0]["offset_ms"] is not None
    finally:
        with gateway.api("admin") as admin:
            admin.delete(f"/api/admin/policies/{created['id']}")
