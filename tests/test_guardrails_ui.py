"""The guardrails page in the real Chromium: an admin saves a rule with the form, acknowledges an alert
with a note, and sees the access requests waiting; an auditor sees alerts but not the policies."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from gui_recorder.guardrails import alerts
from gui_recorder.guardrails.rules import Hit, Rule, compile_pattern
from support.pages import signed_in


def _an_alert(gateway, tag: str) -> None:
    rule = Rule(name=f"ui rule {tag}", pattern=compile_pattern("words", ["x"], 20), severity="high", action="block")
    alerts.record_hits(gateway.app.state.services.db, alerts.SessionContext(f"ui-{tag}", "vendor", "demo-vnc"),
                       [Hit(rule, f"shutdown /s {tag}", "typed", "shutdown")], offset_ms=1234, blocked=True)


def test_the_guardrails_page_saves_rules_acknowledges_alerts_and_lists_access_requests(gateway, browser, artifacts):
    tag = secrets.token_hex(3)
    _an_alert(gateway, tag)
    with gateway.api("vendor") as vendor:
        now = datetime.now(UTC)
        vendor.post("/api/connections/demo-vnc/access-requests",
                    json={"reason": f"ui {tag}", "starts_at": now.isoformat(),
                          "ends_at": (now + timedelta(hours=1)).isoformat()}).raise_for_status()
    context, page = signed_in(browser, gateway, "admin", "guardrails.html")
    try:
        page.locator("body[data-view='guardrails']").wait_for(timeout=15_000)
        page.fill("#p-name", f"ui words {tag}")
        page.select_option("#p-kind", "words")
        page.fill("#p-value", "drop table\ntruncate")
        page.select_option("#p-action", "alert")
        page.fill("#p-users", "vendor")
        page.click("#policy-form button[type='submit']")
        page.locator("#policies-body tr", has_text=f"ui words {tag}").wait_for(timeout=10_000)
        row = page.locator("#alerts-body tr", has_text=f"ui rule {tag}")
        assert "blocked" in row.inner_text()
        page.once("dialog", lambda dialog: dialog.accept(f"seen {tag}"))
        row.locator("button", has_text="Acknowledge").click()
        page.locator("#alerts-body tr", has_text=f"seen {tag}").wait_for(timeout=10_000)
        assert page.locator("#access-body tr", has_text=f"ui {tag}").count() == 1
        page.screenshot(path=str(artifacts / "ui-guardrails.png"), full_page=True)
    finally:
        context.close()
    with gateway.api("admin") as admin:
        made = [p for p in admin.get("/api/admin/policies").json() if p["name"] == f"ui words {tag}"]
        assert made and made[0]["match_value"] == ["drop table", "truncate"] and made[0]["scope"]["users"] == ["vendor"]
        admin.delete(f"/api/admin/policies/{made[0]['id']}")
    context, page = signed_in(browser, gateway, "auditor", "guardrails.html")
    try:
        page.locator("body[data-view='guardrails']").wait_for(timeout=15_000)
        assert page.locator("#policies-section").is_hidden() and page.locator("#access-section").is_hidden()
        assert page.locator("#alerts-body tr", has_text=f"ui rule {tag}").count() == 1
    finally:
        context.close()


def test_a_vendor_requests_access_on_the_start_page_and_opens_the_connection_once_approved(
        gateway, browser, stack, artifacts):
    tag = secrets.token_hex(3)
    conn_id = f"vnc-jit-{tag}"
    with gateway.api("admin") as admin:
        admin.post("/api/admin/connections", json={
            "id": conn_id, "name": f"Production desktop {tag}", "protocol": "vnc", "host": stack.vnc.host,
            "port": stack.vnc.port, "password": stack.vnc.password, "allowed_roles": ["vendor"],
            "recording_policy": {"require_approval": True}}).raise_for_status()
    context, page = signed_in(browser, gateway, "vendor")
    try:
        gated = page.locator(f".connection-gated[data-connection-id='{conn_id}']")
        gated.wait_for(timeout=10_000)
        assert page.locator(f"a.connection[data-connection-id='{conn_id}']").count() == 0, "no link before approval"
        gated.locator("button[type='submit']").click()  # no reason yet: refused on the page
        assert "Say why" in gated.locator("[role='alert']").inner_text()
        gated.locator("textarea").fill(f"patching KB{tag}, ticket CHG-{tag}")
        gated.locator("select").select_option("2")
        page.screenshot(path=str(artifacts / "ui-access-gated.png"), full_page=True)
        gated.locator("button[type='submit']").click()
        page.locator("#request-list li[data-status='pending']", has_text=conn_id).wait_for(timeout=10_000)

        with gateway.api("admin") as admin:
            pending = [r for r in admin.get("/api/admin/access-requests", params={"status": "pending"}).json()
                       if r["connection_id"] == conn_id]
            assert len(pending) == 1 and pending[0]["user"] == "vendor" and f"KB{tag}" in pending[0]["reason"]
            hours = (datetime.fromisoformat(pending[0]["ends_at"]) - datetime.fromisoformat(pending[0]["starts_at"]))
            assert abs(hours - timedelta(hours=2)) < timedelta(seconds=5), hours
            admin.post(f"/api/admin/access-requests/{pending[0]['id']}/decision",
                       json={"approve": True, "note": f"ok {tag}"}).raise_for_status()

        page.click("#refresh")
        link = page.locator(f"a.connection[data-connection-id='{conn_id}']")
        link.wait_for(timeout=10_000)
        assert "until" in link.inner_text()
        approved = page.locator("#request-list li[data-status='approved']", has_text=conn_id)
        assert f"ok {tag}" in approved.inner_text() and "by admin" in approved.inner_text()
        page.screenshot(path=str(artifacts / "ui-access-request.png"), full_page=True)
        link.click()
        page.locator("body[data-state='connected']").wait_for(timeout=30_000)  # the window lets the session open
    finally:
        context.close()
        with gateway.api("admin") as admin:
            admin.delete(f"/api/admin/connections/{conn_id}")
