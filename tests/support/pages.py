"""The real Chromium (Playwright's sync API) signed in to the gateway.

Waits use locators, never string predicates: those are evaluated with eval, which
the gateway's CSP forbids, and test_csp_browser.py signs in under the CSP.
"""

from __future__ import annotations


def sign_in(page, gateway, role: str) -> None:
    """Sign ``page`` in through the start page's form as ``role`` (conftest's gateway knows the passwords)."""
    page.goto(gateway.url)
    page.fill("#username", role)
    page.fill("#password", gateway.accounts[role])
    page.click("#login-submit")
    page.locator("body[data-view='connections']").wait_for(timeout=15_000)


def new_page(browser, width: int = 1280, height: int = 900, bypass_csp: bool = True):
    """A fresh context (its own cookies) and page; see conftest's ``browser`` for ``bypass_csp``."""
    context = browser.new_context(bypass_csp=bypass_csp, viewport={"width": width, "height": height})
    return context, context.new_page()


def signed_in(browser, gateway, role: str, page_path: str = "", **viewport):
    """A new context signed in as ``role``, at ``page_path`` if given."""
    context, page = new_page(browser, **viewport)
    sign_in(page, gateway, role)
    if page_path:
        page.goto(gateway.url + page_path)
    return context, page


def open_session(browser, gateway, connection_id: str, role: str = "vendor"):
    """Sign in and open the desktop ``connection_id``; page errors are collected into the list returned."""
    context, page = new_page(browser, 1100, 800)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, gateway, role)
    page.click(f"a.connection[data-connection-id='{connection_id}']")
    page.locator("body[data-state='connected']").wait_for(timeout=30_000)
    return context, page, errors
