"""`gui-recorder import`: recordings written by real guacd become sessions."""

from __future__ import annotations

import json
import subprocess
import sys

from support.sessions import record_with_guacd
from gui_recorder.cli import settings_env
from gui_recorder.protocol import parse_all


def run_import(gateway, directory) -> str:
    env = {**settings_env(gateway.settings), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "gui_recorder.cli", "import", str(directory)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_import_guacd_recordings(gateway, stack, tmp_path):
    native = tmp_path / "history"
    await record_with_guacd(stack, native, "alice@dc01-2026-11-01", "echo imported-one\n")
    described = await record_with_guacd(stack, native, "session-2", "echo imported-two\n")
    (native / "session-2.json").write_text(json.dumps(
        {"user": "bob", "connection": "fileserver", "protocol": "vnc", "started_at": "2026-10-01T09:00:00+00:00"}))
    data = described.read_bytes()
    truncated = native / "cut-short"
    truncated.write_bytes(data[: len(data) * 2 // 3])  # a guacd that died mid-write
    (native / "notes.txt").write_text("not a recording")

    out = run_import(gateway, native)
    assert out.count("imported ") == 3 and "skipped" in out and "truncated" in out
    with gateway.api("auditor") as auditor:
        rows = {r["user"]: r for r in auditor.get("/api/sessions", params={"limit": 1000}).json()}
        assert rows["alice"]["connection"] == "dc01-2026-11-01" and rows["alice"]["recording_complete"]
        bob = rows["bob"]
        assert bob["connection"] == "fileserver" and bob["started_at"].startswith("2026-10-01T09:00:00")
        assert bob["status"] == "ended" and bob["recording_complete"]
        assert auditor.get(f"/api/sessions/{bob['id']}/recording").content == data
        syncs = [int(i[1]) for i in parse_all(data) if i[0] == "sync"]
        assert bob["recording"]["duration_ms"] == syncs[-1] - syncs[0]
    again = run_import(gateway, native)
    assert "0 imported, 3 already there, 1 skipped" in again
