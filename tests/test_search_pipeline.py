"""Typed and on-screen text of a real session become searchable through the API and the CLI."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

from conftest import wait_for
from support.sessions import drive_session
from gui_recorder.cli import settings_env


async def test_typed_phrase_is_found_by_api_and_cli_with_its_moment(gateway, worker):
    # Letters OCR cannot confuse with digits (no l/1, o/0): the phrase is then exact on screen too.
    phrase = "needle" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(6))
    session_id = await drive_session(gateway, "demo-vnc", f"echo {phrase}\n", seconds=3)
    with gateway.api("auditor") as auditor:
        def found():
            # Typed text may already be there from the live pass; wait for the screen text too.
            results = auditor.get("/api/search", params={"q": phrase}).json().get("results") or []
            return results if {r["source"] for r in results} == {"typed", "screen"} else None

        results = wait_for(found, timeout=180, interval=1, what="the index job")
        typed = [r for r in results if r["source"] == "typed" and r["session_id"] == session_id]
        assert typed and f"<mark>{phrase}</mark>" in typed[0]["snippet"]
        assert 500 <= typed[0]["offset_ms"] <= 4000, typed[0]
        screen = [r for r in results if r["source"] == "screen" and r["session_id"] == session_id]
        assert screen, "the echoed phrase on the xterm is found by OCR too"
        assert auditor.get("/api/search", params={"q": phrase, "source": "screen"}).json()["count"] == len(screen)
        assert auditor.get("/api/search", params={"q": phrase, "user": "nobody"}).json()["count"] == 0
        text = auditor.get(f"/api/sessions/{session_id}/text").json()
        assert any(phrase in item["text"] for item in text["items"] if item["source"] == "typed")
    with gateway.api("vendor") as vendor:
        assert vendor.get("/api/search", params={"q": phrase}).status_code == 403
    with gateway.api("admin") as admin:
        events = admin.get("/api/audit", params={"action": "search", "limit": 20}).json()
        assert any(e["detail"].get("q") == phrase and e["username"] == "auditor" for e in events)
    env = {**settings_env(gateway.settings), "PATH": "/usr/bin:/bin"}
    cli = subprocess.run([sys.executable, "-m", "gui_recorder.cli", "search", phrase, "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert any(r["session_id"] == session_id for r in json.loads(cli.stdout)["results"])
