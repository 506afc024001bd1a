"""The admin console in the real Chromium, against the real stack (issue 12's done-when): an admin creates
a vendor and a connection to the demo VNC desktop through the pages, tests it (a real guacd handshake),
grants it; the vendor signs in and opens it. Screenshots of every section go to test-artifacts/."""

from __future__ import annotations

import secrets

from support.pages import new_page, sign_in, signed_in


def _tab(page, name: str) -> None:
    page.click(f"#tab-{name}")
    page.locator(f"body[data-view='admin-{name}']").wait_for(timeout=15_000)


def test_admin_creates_a_vendor_and_a_connection_grants_it_and_the_vendor_opens_it(gateway, stack, browser,
                                                                                   artifacts):
    suffix = secrets.token_hex(3)
    vendor, vendor_pw = f"acme-{suffix}", "acme-" + secrets.token_urlsafe(14)
    conn_id = f"acme-vnc-{suffix}"
    context, page = signed_in(browser, gateway, "admin", "admin.html")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.locator("body[data-view='admin-users']").wait_for(timeout=15_000)
        page.fill("#u-name", vendor)
        page.select_option("#u-role", "vendor")
        page.select_option("#u-source", "local")
        page.fill("#u-password", vendor_pw)
        page.click("#u-create")
        page.locator(f"tr[data-username='{vendor}']").wait_for(timeout=15_000)
        assert page.locator(f"tr[data-username='{vendor}'] .role-select").input_value() == "vendor"
        page.screenshot(path=str(artifacts / "admin-users.png"), full_page=True)

        _tab(page, "connections")
        page.fill("#c-id", conn_id)
        page.fill("#c-name", f"Acme VNC {suffix}")
        page.select_option("#c-protocol", "vnc")
        page.fill("#c-host", stack.vnc.host)
        page.fill("#c-port", str(stack.vnc.port))
        page.fill("#c-tags", "acme, vendors")
        page.fill("#c-password", stack.vnc.password)
        page.click("#c-save")
        row = page.locator(f"tr[data-connection-id='{conn_id}']")
        row.wait_for(timeout=15_000)
        assert row.locator(".credentials").inner_text() == "password"
        # Write-only: once saved, the password is nowhere in the page, not even in the edit form.
        row.locator(".edit-connection").click()
        assert page.input_value("#c-password") == "" and "set" in page.get_attribute("#c-password", "placeholder")
        assert stack.vnc.password not in page.content()
        # Saving the edit with the password left empty keeps the stored one (the test below still connects).
        page.fill("#c-name", f"Acme VNC {suffix} (edited)")
        page.click("#c-save")
        page.locator(f"tr[data-connection-id='{conn_id}']", has_text="(edited)").wait_for(timeout=15_000)
        assert row.locator(".credentials").inner_text() == "password"
        row.locator(".test-connection").click()
        result = page.locator("#test-result[data-ok]")
        result.wait_for(timeout=30_000)
        assert result.get_attribute("data-ok") == "true", result.inner_text()
        assert "0x0000" in result.inner_text()
        page.screenshot(path=str(artifacts / "admin-connections.png"), full_page=True)

        _tab(page, "grants")
        page.select_option("#gr-who-kind", "user")
        page.fill("#gr-who", vendor)
        page.select_option("#gr-what-kind", "connection")
        page.fill("#gr-what", conn_id)
        page.click("#gr-create")
        page.locator("#grants-body tr", has_text=vendor).wait_for(timeout=15_000)
        page.screenshot(path=str(artifacts / "admin-grants.png"), full_page=True)

        _tab(page, "groups")
        page.fill("#g-name", f"Acme {suffix}")
        page.fill("#g-members", vendor)
        page.fill("#g-scope", "acme")
        page.click("#g-save")
        page.locator(f"tr[data-group='Acme {suffix}']").wait_for(timeout=15_000)
        page.screenshot(path=str(artifacts / "admin-groups.png"), full_page=True)

        _tab(page, "settings")
        assert page.locator("tr[data-variable='GUI_RECORDER_SECRET_KEY'] .setting-value").inner_text() == "(set)"
        assert gateway.settings.secret_key.get_secret_value() not in page.content()
        page.screenshot(path=str(artifacts / "admin-settings.png"), full_page=True)

        # The vendor signs in through the start page and opens what was granted: the real desktop.
        vendor_context, desk = new_page(browser, 1100, 800)
        try:
            desk.goto(gateway.url)
            desk.fill("#username", vendor)
            desk.fill("#password", vendor_pw)
            desk.click("#login-submit")
            desk.locator("body[data-view='connections']").wait_for(timeout=15_000)
            # The demo desktops are open to the vendor role; the new one only through the grant.
            desk.locator(f"a.connection[data-connection-id='{conn_id}']").wait_for(timeout=15_000)
            desk.screenshot(path=str(artifacts / "admin-vendor-connections.png"))
            desk.click(f"a.connection[data-connection-id='{conn_id}']")
            desk.locator("body[data-state='connected']").wait_for(timeout=30_000)
            desk.screenshot(path=str(artifacts / "admin-vendor-session.png"))

            # The admin disables the vendor from the Users tab: the open desktop ends at once.
            _tab(page, "users")
            page.click(f"tr[data-username='{vendor}'] .disable")
            page.locator(f"tr[data-username='{vendor}'][data-disabled='true']").wait_for(timeout=15_000)
            desk.locator("body[data-state='disconnected'], body[data-state='error']").wait_for(timeout=30_000)
            desk.screenshot(path=str(artifacts / "admin-vendor-disabled.png"))
            page.screenshot(path=str(artifacts / "admin-users-disabled.png"), full_page=True)
            with gateway.api("admin") as api:
                mine = [r for r in api.get("/api/sessions").json() if r["user"] == vendor]
            assert [r["status"] for r in mine] == ["terminated"] and "disabled" in mine[0]["end_reason"], mine
        finally:
            vendor_context.close()
        assert not errors, errors
    finally:
        context.close()


def test_the_console_is_refused_to_roles_without_user_admin(gateway, browser):
    for role in ("auditor", "vendor"):
        context, page = signed_in(browser, gateway, role, "admin.html")
        try:
            page.locator("body[data-view='forbidden']").wait_for(timeout=15_000)
            assert "user.admin" in page.inner_text("#not-allowed")
            assert page.locator("#nav a[href='admin.html']").count() == 0
        finally:
            context.close()


def test_the_console_runs_under_the_csp_without_violations(gateway, browser):
    from test_csp_browser import COLLECT

    context, page = new_page(browser, bypass_csp=False)
    context.add_init_script(COLLECT)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security" in m.text
            else None)
    try:
        sign_in(page, gateway, "admin")
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.goto(gateway.url + "admin.html")
        page.locator("body[data-view='admin-users']").wait_for(timeout=15_000)
        for tab in ("groups", "connections", "grants", "settings", "users"):
            _tab(page, tab)
            if tab == "connections":  # the scripts built the rows under the CSP
                page.locator("tr[data-connection-id='demo-vnc'] .test-connection").wait_for(timeout=15_000)
        assert page.evaluate("window.__cspViolations") == [] and not errors, (errors,)
    finally:
        context.close()
