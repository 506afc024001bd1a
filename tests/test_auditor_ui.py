"""Auditor and ops pages in the real Chromium: search -> player, watch live, terminate, 403s, dashboard.

Screenshots of every page go to test-artifacts/.
"""

from __future__ import annotations

import secrets

import numpy as np

from conftest import run_async, wait_for
from support.pages import open_session, signed_in
from support.sessions import drive_session


def letters(n: int) -> str:
    return "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(n))


def test_search_hit_opens_player_at_the_moment(gateway, worker, browser, artifacts):
    phrase = "seekme" + letters(6)
    session_id = run_async(drive_session(gateway, "demo-vnc", f"echo {phrase}\n", seconds=4))
    with gateway.api("auditor") as auditor:
        hit = wait_for(lambda: next((r for r in auditor.get("/api/search", params={"q": phrase}).json()["results"]
                                     if r["session_id"] == session_id and r["source"] == "typed"), None),
                       timeout=180, what="the index")
        wait_for(lambda: auditor.get(f"/api/sessions/{session_id}/video-info").status_code == 200,
                 timeout=180, what="the video")
    context, page = signed_in(browser, gateway, "auditor", "search.html")
    page.fill("#q", phrase)
    page.click("#search-form button[type=submit]")
    result = page.locator(f"a.search-result[data-session-id='{session_id}']").first
    result.wait_for()
    assert phrase in result.inner_text()
    page.screenshot(path=str(artifacts / "ui-search.png"))
    result.click()
    page.wait_for_function("document.body?.dataset.ready === 'true'", timeout=30_000)
    page.wait_for_function("window.player.video.readyState >= 1 && !window.player.video.seeking")
    position_ms = page.evaluate("window.player.video.currentTime * 1000")
    assert abs(position_ms - hit["offset_ms"]) <= 2000, (position_ms, hit["offset_ms"])
    assert page.locator("#text-list li").count() >= 1
    assert page.locator(".marker-hit").count() == 1
    page.screenshot(path=str(artifacts / "ui-player.png"))
    # Clicking a line of the text timeline seeks there.
    line = page.locator("#text-list li").first
    target = int(line.get_attribute("data-offset-ms"))
    line.click()
    page.wait_for_function(f"Math.abs(window.player.video.currentTime * 1000 - {target}) < 300")
    # Hovering the timeline previews the sprite tile of that moment.
    box = page.locator("#scrub").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator("#preview").wait_for()
    assert "sprite.jpg" in page.eval_on_selector("#preview-img div", "tile => tile.style.backgroundImage")
    page.mouse.move(0, 0)
    # Shortcuts: Home goes to the start, '?' toggles the help.
    page.keyboard.press("Home")
    page.wait_for_function("window.player.video.currentTime < 0.3")
    page.keyboard.press("?")
    assert page.locator("#help-overlay").is_visible()
    page.keyboard.press("?")
    assert not page.locator("#help-overlay").is_visible()
    # Review and export.
    page.fill("#review-comment", f"checked {phrase}")
    page.click("#mark-reviewed")
    page.wait_for_function(f"document.getElementById('reviews').textContent.includes('checked {phrase}')")
    with gateway.api("auditor") as auditor:
        reviews = auditor.get(f"/api/sessions/{session_id}").json()["reviews"]
    assert reviews[-1]["reviewed_by"] == "auditor" and reviews[-1]["comment"] == f"checked {phrase}"
    assert page.get_attribute("#export", "href") == f"/api/sessions/{session_id}/export"
    # The video shows the recorded desktop: near the end the white xterm fills most of the frame.
    page.evaluate("window.player.seek(window.player.video.duration * 1000 - 300)")
    page.wait_for_function("!window.player.video.seeking && window.player.video.readyState >= 2")
    white = page.evaluate("""() => {
        const v = window.player.video, c = document.createElement('canvas');
        c.width = v.videoWidth; c.height = v.videoHeight;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 200 && d[i + 2] > 200) n++;
        return n / (d.length / 4); }""")
    assert white > 0.3, white
    page.screenshot(path=str(artifacts / "ui-player-end.png"))
    context.close()


def test_auditor_watches_live_and_terminates(gateway, browser, artifacts):
    vendor_ctx, vendor, errors = open_session(browser, gateway, "demo-vnc")
    # This page's own session (the tunnel's UUID is the session id): another test's vendor session may
    # still be live at this moment, and watching that one would show none of this typing.
    vendor.wait_for_function("Boolean(window.guiRecorder?.session?.tunnel?.uuid)", timeout=30_000)
    session_id = vendor.evaluate("window.guiRecorder.session.tunnel.uuid")
    with gateway.api("auditor") as auditor:
        wait_for(lambda: auditor.get(f"/api/sessions/{session_id}").json().get("status") == "active",
                 what="the live session")
    auditor_ctx, watcher = signed_in(browser, gateway, "auditor", "sessions.html")
    watcher.wait_for_function("document.body?.dataset.view === 'sessions'")
    row = watcher.locator(f"tr[data-session-id='{session_id}']")
    assert "LIVE" in row.inner_text()
    watcher.screenshot(path=str(artifacts / "ui-sessions.png"))
    row.locator("a.watch-live").click()
    watcher.wait_for_function("document.body?.dataset.state === 'connected'", timeout=30_000)
    watcher.wait_for_timeout(1500)
    # The read-only view fits the window (1280x900) without scrolling.
    shown = watcher.locator("#display").bounding_box()
    assert shown["y"] + shown["height"] <= 900 and shown["x"] + shown["width"] <= 1280, shown

    def watcher_pixels() -> np.ndarray:
        url = watcher.evaluate("window.guiRecorder.client.getDisplay().flatten().toDataURL('image/png')")
        import base64

        import cv2

        return cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)

    before = watcher_pixels()
    vendor.click("#display")
    vendor.keyboard.type(f"echo watched-{letters(5)}", delay=40)
    vendor.keyboard.press("Enter")
    # Until the typing shows in the watcher's copy (a loaded machine takes its time), or fail.
    wait_for(lambda: np.any(before != watcher_pixels(), axis=2)[:120, :].mean() > 0.002, timeout=30,
             interval=0.5, what="the watcher to see the user's typing in the xterm")
    watcher.screenshot(path=str(artifacts / "ui-watch.png"))

    watcher.once("dialog", lambda dialog: dialog.accept("policy breach"))
    watcher.click("#terminate")
    vendor.wait_for_function("['error', 'disconnected'].includes(document.body?.dataset.state)", timeout=20_000)
    message = vendor.locator("#status-message").inner_text().lower()
    assert "auditor" in message, message
    assert vendor.evaluate("window.guiRecorder.lastError && window.guiRecorder.lastError.codeHex") == "0x020B"
    vendor.screenshot(path=str(artifacts / "ui-terminated-user.png"))
    watcher.wait_for_function("['disconnected', 'error'].includes(document.body?.dataset.state)", timeout=20_000)
    assert "ended" in watcher.locator("#status-message").inner_text().lower()
    with gateway.api("auditor") as auditor:
        row = wait_for(lambda: (r := auditor.get(f"/api/sessions/{session_id}").json())["status"] != "active" and r,
                       what="the session to end")
    assert row["status"] == "terminated" and "auditor" in row["end_reason"] and "policy breach" in row["end_reason"]
    with gateway.api("admin") as admin:
        actions = {e["action"] for e in admin.get("/api/audit", params={"limit": 100}).json() if e["target"] == session_id}
    assert {"session.watch", "session.terminate"} <= actions
    vendor_ctx.close()
    auditor_ctx.close()
    assert errors == []


def test_vendor_is_refused_every_auditor_page_and_api(gateway, browser, artifacts):
    session_id = run_async(drive_session(gateway, "demo-vnc", "", seconds=1))
    with gateway.api("vendor") as vendor:
        for method, path in [("GET", f"/api/sessions/{session_id}/recording"), ("GET", "/api/audit"),
                             ("GET", "/api/search?q=x"), ("POST", f"/api/sessions/{session_id}/terminate"),
                             ("POST", f"/api/sessions/{session_id}/watch-token"), ("GET", f"/api/sessions/{session_id}/video"),
                             ("GET", f"/api/sessions/{session_id}/text"), ("GET", f"/api/sessions/{session_id}/export"),
                             ("GET", "/api/ops/storage"), ("GET", "/api/audit/export")]:
            assert vendor.request(method, path).status_code == 403, path
    context, page = signed_in(browser, gateway, "vendor")
    assert page.locator("#sessions-link").is_hidden(), "the reviewers' link needs session.view_all"
    page.goto(gateway.url + "sessions.html")
    page.wait_for_function("document.body?.dataset.view === 'sessions'")
    # The vendor sees its own session, without the auditors' buttons or links.
    assert page.locator(f"tr[data-session-id='{session_id}']").count() == 1
    assert page.locator("a.watch-live, button.terminate, a.play").count() == 0
    # The navigation is built from /api/auth/me's capabilities (connection.use, session.view_own).
    nav = page.locator("#nav a")
    assert [nav.nth(i).get_attribute("href") for i in range(nav.count())] == ["./", "sessions.html"]
    for path in ("watch.html?session=" + session_id, "player.html?session=" + session_id, "search.html",
                 "audit.html", "ops.html"):
        page.goto(gateway.url + path)
        page.locator("#not-allowed").wait_for()
        page.screenshot(path=str(artifacts / f"ui-vendor-{path.split('.')[0]}.png"))
    context.close()


def test_ops_dashboard_shows_the_bytes_in_minio(gateway, browser, minio_client, artifacts):
    run_async(drive_session(gateway, "demo-vnc", "echo ops\n", seconds=1))
    context, page = signed_in(browser, gateway, "operator", "ops.html")
    page.wait_for_function("document.body?.dataset.ready === 'true'", timeout=30_000)
    nav = page.locator("#nav a")  # an operator's capabilities: connection.use, session.view_own, ops.read
    assert [nav.nth(i).get_attribute("href") for i in range(nav.count())] == ["./", "sessions.html", "ops.html"]
    shown = int(page.locator("#hot-bytes").get_attribute("data-bytes"))
    in_minio = sum(o.size for o in minio_client.list_objects(gateway.settings.tiers[0].bucket, recursive=True))
    assert shown == in_minio
    assert page.locator("#coverage").inner_text().endswith("%")
    assert page.locator("#history-chart path").count() == 2
    page.screenshot(path=str(artifacts / "ui-ops.png"), full_page=True)
    page.goto(gateway.url + "audit.html")
    page.locator("#not-allowed").wait_for()
    context.close()
    context, page = signed_in(browser, gateway, "admin", "audit.html")
    page.wait_for_function("document.body?.dataset.view === 'audit'")
    assert page.locator("#audit-body tr").count() > 0
    page.screenshot(path=str(artifacts / "ui-audit.png"))
    context.close()
