"""Every page runs under the gateway's strict CSP in the real Chromium, with no violation.

The other browser tests bypass the CSP (Playwright's string predicates need
eval); this one does not, so an inline script, an inline style or a CDN a page
comes to rely on fails here. Violations are collected by a listener installed
before any page script runs (an init script is not subject to the page's CSP).
"""

from __future__ import annotations

import pytest

from conftest import run_async, wait_for
from support.pages import sign_in
from support.sessions import drive_session

COLLECT = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="module")
def played(gateway, worker):
    """A real recorded and rendered session, so the player and its media are exercised too."""
    session_id = run_async(drive_session(gateway, "demo-vnc", "echo csp\n", seconds=2))
    with gateway.api("admin") as admin:
        wait_for(lambda: admin.get(f"/api/sessions/{session_id}/video-info").status_code == 200,
                 timeout=240, what="the render")
    return session_id


def test_pages_run_under_the_csp_without_violations(gateway, browser, played, artifacts):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.add_init_script(COLLECT)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security" in m.text
            else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    response = page.request.get(gateway.url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Signing in runs the start page's scripts: if they were blocked, the form would never answer.
    sign_in(page, gateway, "admin")
    seen = {}
    for path in ("", "sessions.html", f"player.html?session={played}", "search.html?q=csp", "audit.html",
                 "ops.html", "guardrails.html", "docs"):
        page.goto(gateway.url + path)
        page.wait_for_load_state("networkidle")
        seen[path] = page.evaluate("window.__cspViolations")
        page.screenshot(path=str(artifacts / f"csp-{path.split('?')[0].replace('.html', '') or 'index'}.png"))
    assert all(not v for v in seen.values()), f"CSP violations: {seen}"
    assert not errors, errors
    # The player really played under the CSP: its video has loaded metadata from the gateway.
    page.goto(gateway.url + f"player.html?session={played}")
    page.locator("video").wait_for(timeout=15000)
    wait_for(lambda: page.evaluate("document.querySelector('video').readyState") >= 1, timeout=30,
             what="the video's metadata under the CSP")
    # A real remote session under the CSP: guacamole-common-js draws through blob:/data: images
    # and the tunnel is a same-origin WebSocket.
    page.goto(gateway.url)
    page.click("a.connection[data-connection-id='demo-vnc']")
    page.locator("body[data-state='connected']").wait_for(timeout=30000)
    page.locator("#disconnect").click()
    page.locator("body[data-state='disconnected']").wait_for(timeout=15000)
    assert not page.evaluate("window.__cspViolations")
    # The Swagger UI page (vendored, no CDN) rendered its operations.
    page.goto(gateway.url + "docs")
    page.locator(".opblock").first.wait_for(timeout=15000)
    context.close()
