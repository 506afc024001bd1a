"""`gui-recorder dev` (what `make run` calls): the whole stack up, described, and stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gui_recorder.stack.process import free_port

pytestmark = pytest.mark.stack


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
        assert {c["id"] for c in described["connections"]} == {"demo-vnc", "demo-rdp", "demo-ssh"}
        components = described["components"]
        for name in ("guacd", "vnc", "rdp", "ssh"):
            assert components[name]["port"] > 0
        assert components["minio"]["endpoint"].startswith("127.0.0.1:")
        pids = components["pids"]
        assert {"minio", "guacd", "vnc-xvfb", "vnc-x11vnc", "rdp-xvfb", "rdp-shadow", "ssh-sshd"} <= set(pids)
        assert "worker" in pids
        assert [name for name, pid in pids.items() if not _alive(pid)] == []
        # Secrets and data are this account's alone: files 0600, directories 0700 (issue 10).
        assert (var_dir / "gui-recorder.db").is_file() and (var_dir / "secrets.json").is_file()
        open_to_others = [f"{oct(p.stat().st_mode & 0o777)} {p.relative_to(var_dir)}"
                          for p in [var_dir, *var_dir.rglob("*")]
                          if not p.is_symlink() and p.stat().st_mode & 0o077]
        assert open_to_others == []
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped every component" in out
    assert not [name for name, pid in pids.items() if _alive(pid)], "orphaned processes"


def _start_dev(var_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gui_recorder.cli", "dev", "--var-dir", str(var_dir), "--port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_dev_stops_what_an_earlier_run_left_behind(tmp_path):
    """Components a previous `gui-recorder dev` left running (here: a guacd its watchdog
    could not stop, because the watchdog is killed first) are stopped at the next start."""
    var_dir = tmp_path / "dev"
    first = _start_dev(var_dir)
    processes = var_dir / "stack" / "processes.json"
    left: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + 120
        while not (var_dir / "stack.json").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
            time.sleep(0.2)
        left = json.loads(processes.read_text())["processes"]
        # The fault: every safety net but the record on disk is gone. The components
        # ignore the parent-death signal (stopped, so SIGTERM waits) and nobody watches.
        for ident in left.values():
            os.kill(ident["pid"], signal.SIGSTOP)
        wd = [int(p) for p in subprocess.run(["pgrep", "-P", str(first.pid), "-f", "watchdog.py"],
                                             capture_output=True, text=True).stdout.split()]
        assert len(wd) == 1
        os.kill(wd[0], signal.SIGKILL)
        first.kill()
        first.communicate(timeout=30)
        assert all(_alive(ident["pid"]) for ident in left.values()), "nothing was left to clean up"
        second = _start_dev(var_dir)
        try:
            deadline = time.monotonic() + 120
            while json.loads(processes.read_text())["owner"]["pid"] != second.pid or \
                    "worker" not in json.loads(processes.read_text())["processes"]:
                assert second.poll() is None and time.monotonic() < deadline, second.stdout.read()
                time.sleep(0.2)
            assert [name for name, ident in left.items() if _alive(ident["pid"])] == []
        finally:
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=60)
        assert second.returncode == 0, out
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=30)
        from gui_recorder.stack.process import stop_session

        for ident in left.values():
            if _alive(ident["pid"]):  # only when the test failed: leave no stopped component behind
                stop_session(ident["sid"])
