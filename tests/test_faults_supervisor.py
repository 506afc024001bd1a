"""Faults under `gui-recorder dev`'s supervisor, with the real parts (issue 10).

One real `gui-recorder dev` runs for the module; the tests kill its parts with
SIGKILL, in order: guacd (while a session holds a guacd child, the case where
the children kept guacd's listening port and every new session hung 15 s and
failed with 514), then the worker, then `gui-recorder dev` itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import wait_for
from support.clients import TunnelClient
from gui_recorder.stack.checks import http_ok, port_free
from gui_recorder.stack.process import free_port, session_members

pytestmark = pytest.mark.stack


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Dev:
    def __init__(self, var_dir: Path, proc: subprocess.Popen, described: dict):
        self.var_dir = var_dir
        self.proc = proc
        self.described = described
        self.url = described["gateway_url"]
        self.accounts = {a["role"]: a["password"] for a in described["accounts"]}

    def processes(self) -> dict[str, dict]:
        """Who runs now: the supervisor rewrites this file at every (re)start."""
        return json.loads((self.var_dir / "stack" / "processes.json").read_text())["processes"]

    def token(self, connection_id: str, role: str = "vendor") -> str:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            login = http.post("/api/auth/login", json={"username": role, "password": self.accounts[role]})
            login.raise_for_status()
            resp = http.post(f"/api/connections/{connection_id}/tunnel-token",
                             headers={"Authorization": f"Bearer {login.json()['token']}"})
            resp.raise_for_status()
            return resp.json()["token"]


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("dev-faults") / "dev"
    log = open(var_dir.parent / "dev.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gui_recorder.cli", "dev", "--var-dir", str(var_dir), "--port", str(free_port())],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        def up():
            assert proc.poll() is None, (var_dir.parent / "dev.log").read_text()
            stack_json = var_dir / "stack.json"
            if not stack_json.exists():
                return None
            described = json.loads(stack_json.read_text())
            return described if http_ok(described["gateway_url"] + "api/health") else None

        yield Dev(var_dir, proc, wait_for(up, timeout=120, interval=0.2, what="gui-recorder dev"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        log.close()


async def open_session(dev: Dev, connection_id: str = "demo-vnc") -> TunnelClient:
    """A tunnel through the dev gateway, up to guacd's first frame (a `sync`)."""
    client = await TunnelClient.open(dev.url, dev.token(connection_id), timeout=20)
    try:
        await client.first_frame(20)
    except BaseException:
        await client.close()
        raise
    return client


async def test_guacd_killed_is_restarted_and_a_new_session_works(dev):
    before = dev.processes()["guacd"]
    live = await open_session(dev)
    # The live session is served by a guacd child (in guacd's session, not its process
    # group) that holds guacd's listening socket. guacd 1.3's children end when the
    # parent dies, unless they are stuck: stopping them (the fault injected here)
    # keeps the socket open, as in issue 10, where new sessions hung 15 s and got 514.
    children = [p for p in session_members(before["sid"]) if p != before["pid"]]
    assert children, "no guacd connection process to prove the restart against"
    for child in children:
        os.kill(child, signal.SIGSTOP)

    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(lambda: (g := dev.processes()["guacd"])["pid"] != before["pid"] and g, timeout=30,
                     interval=0.1, what="guacd to be started again")
    assert after["restarts"] == 1 and alive(after["pid"])
    assert not [p for p in children if alive(p)], "guacd's connection processes survived its restart"

    # The old session ends (its guacd child is gone) ...
    await live.wait_closed(20)
    assert live.closed_at is not None
    # ... and a new one reaches the desktop through the restarted guacd, on the same port.
    fresh = await open_session(dev)
    await fresh.close()
    assert dev.processes()["guacd"]["pid"] == after["pid"]


def test_worker_killed_is_restarted(dev):
    before = dev.processes()["worker"]
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(lambda: (w := dev.processes()["worker"])["pid"] != before["pid"] and w, timeout=30,
                     interval=0.1, what="the worker to be started again")
    assert after["restarts"] == 1
    assert alive(after["pid"])
    cmdline = Path(f"/proc/{after['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"worker" in cmdline and b"gui_recorder.cli" in cmdline
    assert "restarting worker" in (dev.var_dir / "stack" / "logs" / "worker.log").read_text()


async def test_sigkill_of_dev_leaves_no_component_behind(dev):
    live = await open_session(dev)  # a guacd child too, the one that used to keep the port
    components = dev.described["components"]
    pids = {name: p["pid"] for name, p in dev.processes().items()}
    guacd_sid = dev.processes()["guacd"]["sid"]
    children = [p for p in session_members(guacd_sid) if p != pids["guacd"]]
    assert children
    for child in children:  # stuck: only the watchdog can end them (no parent-death signal reaches them)
        os.kill(child, signal.SIGSTOP)
    pids.update({f"guacd-child-{p}": p for p in children})
    ports = {
        "gateway": int(dev.url.rsplit(":", 1)[1].strip("/")),
        "guacd": components["guacd"]["port"],
        "minio": int(components["minio"]["endpoint"].rsplit(":", 1)[1]),
        "minio-console": components["minio"]["console_port"],
        "vnc": components["vnc"]["port"],
        "rdp": components["rdp"]["port"],
    }
    locks = [Path(f"/tmp/.X{components[t]['display'].lstrip(':')}-lock") for t in ("vnc", "rdp")]
    assert all(alive(p) for p in pids.values()) and all(lock.exists() for lock in locks)

    dev.proc.kill()
    dev.proc.wait(10)
    try:
        wait_for(lambda: not [n for n, p in pids.items() if alive(p)], timeout=30, interval=0.1,
                 what="every component to stop")
    finally:
        await live.close()
    assert [n for n, port in ports.items() if not port_free("127.0.0.1", port)] == []
    # Xvfb got SIGTERM (parent-death signal, then the watchdog), so it cleaned up its display.
    assert [str(lock) for lock in locks if lock.exists()] == []
