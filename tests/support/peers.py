"""A second gateway: a real `gui-recorder serve` process beside the session fixture's gateway.

It shares the gateway's database and buckets (so its accounts and connections),
with its own var directory and spool, and whatever settings a test gives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from gui_recorder.stack.checks import http_ok
from gui_recorder.stack.process import free_port


@dataclass
class Peer:
    """A second gateway process; ``start``, ``kill`` (SIGKILL) and ``stop`` it by PID."""

    url: str
    env: dict
    log: Path
    accounts: dict
    proc: subprocess.Popen | None = None

    @classmethod
    def beside(cls, gateway, var: Path, **settings: str) -> "Peer":
        from gui_recorder.cli import settings_env

        port = free_port()
        var.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = {**os.environ, **settings_env(gateway.settings), "GUI_RECORDER_VAR_DIR": str(var),
               "GUI_RECORDER_PORT": str(port), "GUI_RECORDER_DATABASE_URL": gateway.settings.resolved_database_url,
               **settings}
        env.pop("GUI_RECORDER_SPOOL_DIR", None)  # its own, under its var directory
        return cls(f"http://127.0.0.1:{port}/", env, var / "gateway.log", gateway.accounts)

    def __enter__(self) -> "Peer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, *, ready: bool = True) -> None:
        from conftest import wait_for

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gui_recorder.cli", "serve"], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        if ready:  # serving (its health may rightly be down: a test may give it an untrusted guacd)
            try:
                wait_for(lambda: http_ok(self.url + "api/vocabulary") or self.proc.poll() is not None, 60, 0.1,
                         "the peer")
                assert self.proc.poll() is None, self.log.read_text()[-2000:]
            except BaseException:
                self.stop()
                raise

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def api(self, role: str) -> httpx.Client:
        token = httpx.post(self.url + "api/auth/login", json={"username": role, "password": self.accounts[role]}
                           ).raise_for_status().json()["token"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
