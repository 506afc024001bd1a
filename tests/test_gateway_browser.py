"""A vendor works in the real Chromium through the gateway; everything is recorded.

Real parts only: Chromium (Playwright), the gateway, guacd 1.3.0, the x11vnc and
freerdp-shadow targets, MinIO. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pytest

from gui_recorder.protocol import parse_all
from support.keys import pressed_text
from support.pages import open_session, signed_in

SESSION_FIELDS = {"id", "user", "connection", "protocol", "client_addr", "started_at", "ended_at",
                  "bytes_to_client", "bytes_from_client", "end_reason", "recording", "status"}


def sessions_of(api, **params) -> list[dict]:
    body = api.get("/api/sessions", params=params).raise_for_status().json()
    return body["sessions"] if isinstance(body, dict) else body


def wait_recorded(api, session_id: str, timeout: float = 60) -> dict:
    """The session row once it ended and its recording is complete in MinIO."""
    deadline = time.monotonic() + timeout
    while True:
        row = api.get(f"/api/sessions/{session_id}").raise_for_status().json()
        if row["status"] != "active" and row.get("recording_complete"):
            return row
        assert time.monotonic() < deadline, f"session not recorded in time: {row}"
        time.sleep(0.3)


@pytest.mark.parametrize("connection_id", ["demo-vnc", "demo-rdp"])
def test_vendor_session_is_recorded_and_plays_in_guacamole_player(
        gateway, browser, minio_client, artifacts, connection_id):
    phrase = f"gr{secrets.token_hex(5)}"
    context, page, errors = open_session(browser, gateway, connection_id)
    assert page.locator("#recording-notice").is_visible()
    assert "recorded" in page.locator("#recording-notice").inner_text().lower()
    page.wait_for_timeout(1500)  # first frames on screen
    page.click("#display")
    page.keyboard.type(f"echo {phrase}", delay=40)
    page.keyboard.press("Enter")
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts / f"browser-{connection_id}-session.png"))
    page.click("#disconnect")
    page.wait_for_function("document.body?.dataset.state === 'disconnected'", timeout=15_000)
    context.close()
    assert errors == []

    with gateway.api("admin") as admin:
        mine = [s for s in sessions_of(admin) if s["connection"] == connection_id and s["user"] == "vendor"]
        assert mine, "the session is listed"
        row = wait_recorded(admin, mine[0]["id"])
        assert SESSION_FIELDS <= set(row)
        assert row["status"] == "ended" and row["ended_at"] and row["end_reason"]
        assert row["bytes_to_client"] > 10_000 and row["bytes_from_client"] > 0
        assert row["protocol"] == connection_id.split("-")[1] and row["client_addr"] == "127.0.0.1"
        recording = admin.get(f"/api/sessions/{row['id']}/recording").raise_for_status().content

    # The manifest and every segment in MinIO, checked against their SHA-256. Sealed (issue 13): MinIO
    # holds only ciphertext, the API decrypts it, and Guacamole's player below plays what it serves.
    bucket = gateway.settings.tiers[0].bucket
    manifest_obj = minio_client.get_object(bucket, f"sessions/{row['id']}/manifest.json")
    import json

    manifest = json.loads(manifest_obj.read())
    assert manifest["complete"] is True and manifest["segments"]
    joined = b""
    for seg in manifest["segments"]:
        body = minio_client.get_object(bucket, seg["key"]).read()
        assert hashlib.sha256(body).hexdigest() == seg["sha256"] and len(body) == seg["size"]
        joined += body
    assert b".key," not in joined and b".sync," not in joined and b".img," not in joined, "ciphertext only"
    assert sum(seg["plain_size"] for seg in manifest["segments"]) == len(recording), "all of it, decrypted"
    assert manifest["sealing"]["final"] and manifest["sealing"]["algorithm"].startswith("AES-256-GCM")

    instructions = parse_all(recording)
    assert f"echo {phrase}\n" in pressed_text(instructions)
    assert instructions[-1][0] == "sync"
    assert any(i[0] == "img" for i in instructions) and any(i[0] == "mouse" for i in instructions)
    syncs = [int(i[1]) for i in instructions if i[0] == "sync"]
    assert syncs == sorted(syncs), "one clock for frames and input"
    duration_ms = syncs[-1] - syncs[0]

    # Guacamole's own player (guacamole-common-js 1.6.0) plays it to the end.
    context, page = signed_in(browser, gateway, "auditor")
    page.add_script_tag(url="vendor/guacamole-common.js")
    played = page.evaluate(
        """async (id) => {
            const blob = await (await fetch(`api/sessions/${id}/recording`)).blob();
            const rec = new Guacamole.SessionRecording(blob);
            // As Guacamole's player does: 1.6.0 only tracks the position with an onseek handler.
            let seen = 0;
            rec.onseek = (position) => { seen = position; };
            await new Promise((ok) => { rec.onload = ok; });
            const display = rec.getDisplay();
            document.body.innerHTML = '';
            document.body.appendChild(display.getElement());
            const started = Date.now();
            await new Promise((ok) => { rec.onpause = ok; rec.play(); });
            return {duration: rec.getDuration(), position: Math.max(seen, rec.getPosition()), wall: Date.now() - started,
                    width: display.getWidth(), height: display.getHeight()};
        }""",
        row["id"],
    )
    page.screenshot(path=str(artifacts / f"browser-{connection_id}-replay.png"))
    context.close()
    assert played["duration"] == duration_ms and played["duration"] > 3000
    # The player's position may pass the last frame by the milliseconds its timer took.
    assert played["duration"] <= played["position"] <= played["duration"] + 100, played
    assert played["wall"] >= played["duration"] * 0.9, "played in real time, not skipped"
    assert played["width"] > 0 and played["height"] > 0
