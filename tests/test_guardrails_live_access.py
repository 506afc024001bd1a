"""On the real VNC target: a connection with a consent notice and just-in-time approval.

No token without an approved window (403), none without the accepted notice (403); with both the
vendor gets in, is warned that the window ends, and is ended at its end; the acceptance (who, when,
which text) is recorded with the session.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import wait_for
from support.clients import TunnelClient

NOTICE = "This session is recorded and monitored. Accept only if you are authorised (test notice)."
WINDOW_SECONDS = 15


@pytest.fixture
def guarded_connection(gateway, stack):
    spec = {"id": "guarded-vnc", "name": "Guarded VNC", "protocol": "vnc", "host": stack.vnc.host,
            "port": stack.vnc.port, "password": stack.vnc.password, "allowed_users": ["vendor"],
            "recording_policy": {"require_approval": True, "consent_text": NOTICE}}
    with gateway.api("admin") as admin:
        admin.post("/api/admin/connections", json=spec).raise_for_status()
        yield spec["id"]
        admin.delete(f"/api/admin/connections/{spec['id']}")


async def test_consent_and_an_approved_window_let_a_vendor_in_until_the_window_ends(gateway, guarded_connection):
    token_url = f"/api/connections/{guarded_connection}/tunnel-token"
    with gateway.api("vendor") as vendor, gateway.api("admin") as admin:
        refused = vendor.post(token_url)
        assert refused.status_code == 403 and "approved access window" in refused.json()["detail"]
        now = datetime.now(UTC)
        end = now + timedelta(seconds=WINDOW_SECONDS)
        asked = vendor.post(f"/api/connections/{guarded_connection}/access-requests",
                            json={"reason": "rotate certificates", "starts_at": (now - timedelta(seconds=1)).isoformat(),
                                  "ends_at": end.isoformat()}).raise_for_status().json()
        admin.post(f"/api/admin/access-requests/{asked['id']}/decision",
                   json={"approve": True, "note": "test"}).raise_for_status()
        no_consent = vendor.post(token_url)
        assert no_consent.status_code == 403 and "notice" in no_consent.json()["detail"], no_consent.text
        notice = vendor.get(f"/api/connections/{guarded_connection}/consent").raise_for_status().json()
        assert notice["required"] and notice["text"] == NOTICE
        stale = vendor.post(token_url, json={"consent_version": "0" * 16})
        assert stale.status_code == 403 and "changed" in stale.json()["detail"]
        token = vendor.post(token_url, json={"consent_version": notice["version"]}).raise_for_status().json()["token"]
    client = await TunnelClient.open(gateway.url, token, keep=True)
    try:
        await client.first_frame()
        await client.wait_closed(timeout=WINDOW_SECONDS + 60)
    finally:
        await client.close()
    assert client.closed_at >= end.timestamp() - 0.05, "ended at the window's end, not before"
    print(f"window end -> session closed: {client.closed_at - end.timestamp():.2f} s")
    warnings = [ins[2] for ins in client.seen if ins[0] == "gr-notice"]
    assert warnings and "access window ends in" in warnings[0], warnings
    assert client.error is not None and "access window has ended" in client.error[1], client.error
    with gateway.api("auditor") as auditor:
        row = wait_for(lambda: (r := auditor.get(f"/api/sessions/{client.session_id}").json())["status"]
                       != "active" and r, 30, 0.2, "the session's end")
        assert row["status"] == "terminated" and "access window ended" in row["end_reason"], row
        accepted = auditor.get(f"/api/sessions/{client.session_id}/consent").raise_for_status().json()["accepted"]
        assert accepted["user"] == "vendor" and accepted["text"] == NOTICE
        assert accepted["version"] == notice["version"] and accepted["accepted_at"]
    with gateway.api("admin") as admin:
        tokens = admin.get("/api/audit", params={"action": "connection.token", "limit": 10}).json()
        assert any(e["detail"].get("consent_version") == notice["version"] for e in tokens)
