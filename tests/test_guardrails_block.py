"""A `block` rule stops a typed command on the real RDP and VNC targets before it is submitted.

The blocked line would create a file in the demo account's home if it ran
(``: shutdown /s; touch ~/gr-guard-…``; the ``:`` keeps the shutdown itself a
no-op should the block ever fail). After the block the user erases the line
(Ctrl+U) and runs an allowed ``touch``: once that file exists the target has
executed everything submitted, so the blocked file's absence is proof, not
timing. The alert is listed with the line and the recording's time, the
recording carries the attempt's marker and not the submission.
"""

from __future__ import annotations

import asyncio
import pwd
import secrets
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import wait_for
from gui_recorder.protocol import Parser
from support.clients import TunnelClient
from support.keys import CTRL, pressed_text

BLOCK_RULE = {"name": "no destructive commands (test)", "match_kind": "preset",
              "match_value": ["destructive-windows-commands"], "source": "typed", "severity": "high",
              "action": "block", "scope": {"users": ["vendor"], "connections": ["demo-vnc", "demo-rdp"]}}


@pytest.fixture(scope="module")
def block_rule(gateway):
    with gateway.api("admin") as admin:
        created = admin.post("/api/admin/policies", json=BLOCK_RULE)
        assert created.status_code == 201, created.text
        yield created.json()
        assert admin.delete(f"/api/admin/policies/{created.json()['id']}").status_code == 204


def _home(stack) -> Path:
    return Path(pwd.getpwnam(stack.demo_user).pw_dir)


async def _ctrl_u(client: TunnelClient) -> None:
    for keysym, pressed in ((CTRL, 1), (ord("u"), 1), (ord("u"), 0), (CTRL, 0)):
        await client.ws.send(f"3.key,{len(str(keysym))}.{keysym},1.{pressed};")
        await asyncio.sleep(0.03)


@pytest.mark.parametrize("connection_id", ["demo-vnc", "demo-rdp"])
async def test_a_blocked_command_never_runs_and_is_an_alert_with_a_marker(gateway, stack, block_rule, connection_id):
    tag = secrets.token_hex(4)
    home = _home(stack)
    blocked_file, allowed_file = home / f"gr-guard-{tag}", home / f"gr-allowed-{tag}"
    blocked_line = f": shutdown /s; touch ~/{blocked_file.name}"
    with gateway.api("vendor") as vendor:
        token = vendor.post(f"/api/connections/{connection_id}/tunnel-token").raise_for_status().json()["token"]
    client = await TunnelClient.open(gateway.url, token, keep=True)
    try:
        await client.first_frame()
        await asyncio.sleep(1.0)  # the rest of the first picture, as drive_session does
        await client.type(blocked_line)
        sent = time.time()
        await client.type("\n")
        await _ctrl_u(client)
        await client.type(f"touch ~/{allowed_file.name}\n")
        await asyncio.to_thread(wait_for, allowed_file.exists, 60, 0.2, "the allowed command to run")
        assert not blocked_file.exists(), "the blocked command ran on the target"
        notices = [ins for ins in client.seen if ins[0] == "gr-notice"]
        assert notices and "Blocked by policy" in notices[0][2] and BLOCK_RULE["name"] in notices[0][2]
    finally:
        await client.disconnect()
        for path in (blocked_file, allowed_file):
            path.unlink(missing_ok=True)
    session_id = client.session_id
    with gateway.api("auditor") as auditor:
        found = auditor.get("/api/alerts", params={"session": session_id}).raise_for_status().json()["alerts"]
        assert len(found) == 1, found
        alert = found[0]
        stored = datetime.fromisoformat(alert["at"]).timestamp()
        print(f"{connection_id}: Enter sent -> alert stored: {(stored - sent) * 1000:.0f} ms (target <= 100 ms)")
        assert alert["blocked"] and alert["action"] == "block" and alert["severity"] == "high"
        assert alert["text"] == blocked_line and alert["rule"] == BLOCK_RULE["name"]
        assert alert["user"] == "vendor" and alert["connection_id"] == connection_id
        assert alert["offset_ms"] is not None and alert["offset_ms"] > 500, "a marker at its moment in the recording"
        assert not alert["acknowledged"]
        acked = auditor.post(f"/api/alerts/{alert['id']}/ack", json={"note": "test: expected"}).raise_for_status()
        assert acked.json()["acknowledged_by"] == "auditor" and acked.json()["note"] == "test: expected"
        assert auditor.get("/api/alerts", params={"session": session_id, "acknowledged": "false"}).json()["count"] == 0

        def recording():
            resp = auditor.get(f"/api/sessions/{session_id}/recording")
            return resp.content if resp.status_code == 200 and auditor.get(
                f"/api/sessions/{session_id}").json().get("recording_complete") else None

        data = wait_for(recording, 60, 0.5, "the complete recording")
    instructions = Parser().feed(data)
    markers = [ins for ins in instructions if ins[0] == "gr-client" and "gr-guardrail" in ins[2]]
    assert len(markers) == 1 and blocked_line in markers[0][2], "the attempt is in the recording, in band"
    typed = pressed_text(instructions)
    assert typed.count("\n") == 1, f"only the allowed line was submitted to the target: {typed!r}"
    with gateway.api("admin") as admin:
        events = admin.get("/api/audit", params={"action": "alert.ack", "limit": 5}).json()
        assert any(e["target"] == str(alert["id"]) for e in events)


async def test_a_rule_saved_while_a_session_runs_blocks_in_that_session(gateway, stack):
    tag = secrets.token_hex(4)
    home = _home(stack)
    blocked_file, allowed_file = home / f"gr-late-{tag}", home / f"gr-late-ok-{tag}"
    rule = {**BLOCK_RULE, "name": f"late rule {tag}", "match_kind": "words", "match_value": [f"late{tag}"],
            "scope": {"users": ["vendor"], "connections": ["demo-vnc"]}}
    with gateway.api("vendor") as vendor:
        token = vendor.post("/api/connections/demo-vnc/tunnel-token").raise_for_status().json()["token"]
    client = await TunnelClient.open(gateway.url, token, keep=True)
    try:
        await client.first_frame()
        active = gateway.app.state.services.active
        with gateway.api("admin") as admin:
            created = admin.post("/api/admin/policies", json=rule).raise_for_status().json()
        try:
            # The gateway runs in this process: the session's relay shows when it took the new rule.
            await asyncio.to_thread(wait_for, lambda: active[client.session_id].guard is not None, 30, 0.1,
                                    "the running session to take the new rule")
            await client.type(f": late{tag}; touch ~/{blocked_file.name}\n")
            await _ctrl_u(client)
            await client.type(f"touch ~/{allowed_file.name}\n")
            await asyncio.to_thread(wait_for, allowed_file.exists, 60, 0.2, "the allowed command to run")
            assert not blocked_file.exists(), "the rule saved during the session did not block"
        finally:
            with gateway.api("admin") as admin:
                admin.delete(f"/api/admin/policies/{created['id']}")
    finally:
        await client.disconnect()
        for path in (blocked_file, allowed_file):
            path.unlink(missing_ok=True)


async def test_a_terminate_rule_on_pasted_text_ends_the_vnc_session(gateway):
    import base64

    from gui_recorder.protocol import encode

    tag = secrets.token_hex(4)
    rule = {"name": f"no pasted keys {tag}", "match_kind": "words", "match_value": ["BEGIN PRIVATE KEY"],
            "source": "clipboard", "severity": "critical", "action": "terminate",
            "scope": {"users": ["vendor"], "connections": ["demo-vnc"]}}
    with gateway.api("admin") as admin:
        created = admin.post("/api/admin/policies", json=rule).raise_for_status().json()
    try:
        with gateway.api("vendor") as vendor:
            token = vendor.post("/api/connections/demo-vnc/tunnel-token").raise_for_status().json()["token"]
        client = await TunnelClient.open(gateway.url, token, keep=True)
        try:
            await client.first_frame()
            pasted = base64.b64encode(f"-----BEGIN PRIVATE KEY-----\nMII{tag}\n".encode()).decode()
            # What guacamole-common-js sends for a paste: a clipboard stream, its data, its end.
            await client.ws.send(encode(("clipboard", "7", "text/plain")) + encode(("blob", "7", pasted)))
            await client.ws.send(encode(("end", "7")))
            await client.wait_closed(timeout=30)
        finally:
            await client.close()
        assert client.error is not None and rule["name"] in client.error[1], client.error
        with gateway.api("auditor") as auditor:
            row = wait_for(lambda: (r := auditor.get(f"/api/sessions/{client.session_id}").json())["status"]
                           != "active" and r, 30, 0.2, "the session's end")
            assert row["status"] == "terminated" and "pasted text" in row["end_reason"], row
            found = auditor.get("/api/alerts", params={"session": client.session_id}).json()["alerts"]
            assert [a["source"] for a in found] == ["clipboard"] and tag in found[0]["text"]
    finally:
        with gateway.api("admin") as admin:
            admin.delete(f"/api/admin/policies/{created['id']}")


async def test_a_rule_scoped_by_tag_blocks_on_tagged_connections_only(gateway, stack):
    """Scope `tags`: the rule follows every connection carrying the tag. The same command, typed on two
    connections to the same desktop, is blocked on the tagged one and runs on the other."""
    tag = secrets.token_hex(4)
    home = _home(stack)
    conns = {"tagged": f"vnc-prod-{tag}", "untagged": f"vnc-test-{tag}"}
    rule = {**BLOCK_RULE, "name": f"prod only {tag}", "match_kind": "words", "match_value": [f"prod{tag}"],
            "scope": {"users": ["vendor"], "tags": [f"prod-{tag}"]}}
    with gateway.api("admin") as admin:
        for kind, conn_id in conns.items():
            admin.post("/api/admin/connections", json={
                "id": conn_id, "name": f"VNC {kind}", "protocol": "vnc", "host": stack.vnc.host,
                "port": stack.vnc.port, "password": stack.vnc.password, "allowed_roles": ["vendor"],
                "tags": [f"prod-{tag}"] if kind == "tagged" else ["test"]}).raise_for_status()
        created = admin.post("/api/admin/policies", json=rule).raise_for_status().json()
        assert created["scope"]["tags"] == [f"prod-{tag}"]
        assert admin.post("/api/admin/policies", json={**rule, "name": "bad tag", "scope": {"tags": ["Not A Tag"]}}
                          ).status_code == 422
    ran = {}
    try:
        for kind, conn_id in conns.items():
            target, allowed = home / f"gr-tag-{kind}-{tag}", home / f"gr-tag-ok-{kind}-{tag}"
            with gateway.api("vendor") as vendor:
                token = vendor.post(f"/api/connections/{conn_id}/tunnel-token").raise_for_status().json()["token"]
            client = await TunnelClient.open(gateway.url, token, keep=True)
            try:
                await client.first_frame()
                await asyncio.sleep(1.0)  # the rest of the first picture, as drive_session does
                guarded = gateway.app.state.services.active[client.session_id].guard is not None
                assert guarded == (kind == "tagged"), f"{kind}: the session's relay has rules: {guarded}"
                await client.type(f": prod{tag}; touch ~/{target.name}\n")
                await _ctrl_u(client)
                await client.type(f"touch ~/{allowed.name}\n")
                await asyncio.to_thread(wait_for, allowed.exists, 60, 0.2, "the allowed command to run")
                ran[kind] = target.exists()
            finally:
                await client.disconnect()
                for path in (target, allowed):
                    path.unlink(missing_ok=True)
        assert ran == {"tagged": False, "untagged": True}, ran
    finally:
        with gateway.api("admin") as admin:
            admin.delete(f"/api/admin/policies/{created['id']}")
            for conn_id in conns.values():
                admin.delete(f"/api/admin/connections/{conn_id}")
