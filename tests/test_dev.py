"""`gui-recorder dev` (what `make run` calls): the whole stack up, described, and stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from gui_recorder.stack.process import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but still has a PID until reaped; /proc tells.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_dev_serves_describes_and_stops_everything(tmp_path):
    var_dir = tmp_path / "dev"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gui_recorder.cli", "dev", "--var-dir", str(var_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        stack_json = var_dir / "stack.json"
        deadline = time.monotonic() + 120
        page = None
        while time.monotonic() < deadline and page is None:
            assert proc.poll() is None, proc.stdout.read()
            if stack_json.exists():
                described = json.loads(stack_json.read_text())
                try:
                    with urllib.request.urlopen(described["gateway_url"], timeout=2) as resp:
                        page = (resp.status, resp.read())
                except OSError:
                    pass
            time.sleep(0.2)
        assert page is not None, "the gateway never answered"
        assert page[0] == 200
        assert described["gateway_url"] == f"http://127.0.0.1:{port}/"
        assert {a["role"] for a in described["accounts"]} == {"admin", "operator", "vendor", "auditor"}
        assert all(a["password"] for a in described["accounts"])
        assert {c["id"] for c in described["connections"]} == {"demo-vnc", "demo-rdp"}
        components = described["components"]
        for name in ("guacd", "vnc", "rdp"):
            assert components[name]["port"] > 0
        assert components["minio"]["endpoint"].startswith("127.0.0.1:")
        pids = components["pids"]
        assert {"minio", "guacd", "vnc-xvfb", "vnc-x11vnc", "rdp-xvfb", "rdp-shadow"} <= set(pids)
        assert "worker" in pids
        assert [name for name, pid in pids.items() if not _alive(pid)] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped every component" in out
    assert not [name for name, pid in pids.items() if _alive(pid)], "orphaned processes"
