"""Start and stop the real components of the local stack, in order, by PID."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gui_recorder.errors import ComponentError
from gui_recorder.stack import checks
from gui_recorder.stack.process import Managed, free_port

SCREEN = "1024x768x24"


def minio_binary() -> str:
    for candidate in (os.environ.get("GUI_RECORDER_MINIO_BIN"), shutil.which("minio"), str(Path.home() / "go/bin/minio")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise ComponentError("MinIO server binary not found: run `make test` or ./scripts/setup.sh to build it")


@dataclass
class Endpoint:
    host: str
    port: int


@dataclass
class MinioInfo:
    endpoint: str
    access_key: str
    secret_key: str
    console_port: int


@dataclass
class TargetInfo:
    protocol: str  # "rdp" | "vnc"
    host: str
    port: int
    display: str
    username: str | None
    password: str

    def guacd_parameters(self) -> dict[str, str]:
        """guacd's parameters for this target (what a stored connection holds)."""
        params = {"hostname": self.host, "port": str(self.port), "password": self.password}
        if self.protocol == "rdp":
            params.update(username=self.username or "", security="nla", **{"ignore-cert": "true"})
        return params


@dataclass
class StackInfo:
    var_dir: str
    guacd: Endpoint | None = None
    minio: MinioInfo | None = None
    vnc: TargetInfo | None = None
    rdp: TargetInfo | None = None
    pids: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _free_display() -> int:
    for n in range(90, 400):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise ComponentError("no free X display number between :90 and :399")


class Stack:
    """The real components, started on free loopback ports.

    Use as a context manager, or call ``start`` and ``stop``; ``stop`` stops
    every process this object started, newest first, and is safe to repeat.
    """

    def __init__(self, var_dir: Path, *, guacd=True, minio=True, vnc=True, rdp=True,
                 minio_secret_key: str | None = None):
        self.var_dir = var_dir.resolve()
        # MinIO ties its data directory to the root credentials: a stack that
        # keeps its data across restarts (the dev stack) must keep its key too.
        self._minio_secret_key = minio_secret_key
        self.wanted = {"guacd": guacd, "minio": minio, "vnc": vnc, "rdp": rdp}
        self.info = StackInfo(var_dir=str(self.var_dir))
        self._procs: list[Managed] = []
        self._logs = self.var_dir / "logs"

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Managed:
        proc = Managed(name, argv, self._logs, env)
        self._procs.append(proc)
        self.info.pids[name] = proc.pid
        return proc

    def start(self) -> StackInfo:
        try:
            if self.wanted["minio"]:
                self._start_minio()
            if self.wanted["guacd"]:
                self._start_guacd()
            if self.wanted["vnc"]:
                self._start_target(self._start_vnc)
            if self.wanted["rdp"]:
                self._start_target(self._start_rdp)
        except BaseException:
            self.stop()
            raise
        return self.info

    def _start_target(self, start, attempts: int = 3) -> None:
        """A desktop target, retried on a fresh display: stacks started in parallel
        (other test runs on this machine) can race for an X display number."""
        for attempt in range(attempts):
            mark = len(self._procs)
            try:
                start()
                return
            except ComponentError:
                while len(self._procs) > mark:
                    proc = self._procs.pop()
                    self.info.pids.pop(proc.name, None)
                    proc.stop()
                if attempt == attempts - 1:
                    raise

    def _start_minio(self) -> None:
        port, console = free_port(), free_port()
        data = self.var_dir / "minio-data"
        data.mkdir(parents=True, exist_ok=True)
        secret = self._minio_secret_key or secrets.token_urlsafe(18)
        info = MinioInfo(f"127.0.0.1:{port}", "gui-recorder", secret, console)
        proc = self.spawn(
            "minio",
            [minio_binary(), "server", str(data), "--address", info.endpoint,
             "--console-address", f"127.0.0.1:{console}", "--quiet"],
            env={"MINIO_ROOT_USER": info.access_key, "MINIO_ROOT_PASSWORD": info.secret_key,
                 "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"},
        )
        proc.wait_ready(lambda: checks.minio_live(info.endpoint), timeout=60)
        self.info.minio = info

    def _start_guacd(self) -> None:
        port = free_port()
        proc = self.spawn("guacd", ["guacd", "-b", "127.0.0.1", "-l", str(port), "-f", "-L", "info"])
        proc.wait_ready(lambda: checks.guacd_answers("127.0.0.1", port))
        self.info.guacd = Endpoint("127.0.0.1", port)

    def _start_display(self, name: str) -> str:
        # Another stack (a parallel test run) may claim the same free number first: retry.
        for attempt in range(5):
            display = f":{_free_display() + attempt * 7}"
            proc = self.spawn(f"{name}-xvfb", ["Xvfb", display, "-screen", "0", SCREEN, "-nolisten", "tcp"])
            try:
                proc.wait_ready(lambda: checks.x_display_owned(display, proc.pid))
                break
            except ComponentError:
                self._procs.remove(proc)
                proc.stop()
                if attempt == 4:
                    raise
        self.spawn(
            f"{name}-xterm",
            ["xterm", "-fa", "Monospace", "-fs", "14", "-geometry", "80x24+0+0", "-title", f"demo {name}"],
            env={"DISPLAY": display},
        )
        return display

    def _start_vnc(self) -> None:
        display = self._start_display("vnc")
        port, password = free_port(), secrets.token_urlsafe(6)[:8]
        proc = self.spawn(
            "vnc-x11vnc",
            ["x11vnc", "-display", display, "-rfbport", str(port), "-localhost", "-forever", "-shared",
             "-passwd", password, "-noxdamage", "-quiet"],
        )
        proc.wait_ready(lambda: checks.rfb_banner("127.0.0.1", port))
        self.info.vnc = TargetInfo("vnc", "127.0.0.1", port, display, None, password)

    def _start_rdp(self) -> None:
        display = self._start_display("rdp")
        port, username, password = free_port(), "vendor", "Rdp-" + secrets.token_urlsafe(9)
        sam = self.var_dir / "rdp.sam"
        sam.write_text(
            subprocess.run(["winpr-hash", "-u", username, "-p", password, "-f", "sam"],
                           check=True, capture_output=True, text=True).stdout
        )
        sam.chmod(0o600)
        proc = self.spawn(
            "rdp-shadow",
            ["freerdp-shadow-cli", f"/port:{port}", "/bind-address:127.0.0.1", "+auth", "/sec:nla",
             f"/sam-file:{sam}"],
            env={"DISPLAY": display},
        )
        proc.wait_ready(lambda: checks.rdp_negotiates("127.0.0.1", port))
        self.info.rdp = TargetInfo("rdp", "127.0.0.1", port, display, username, password)

    def stop(self) -> None:
        while self._procs:
            self._procs.pop().stop()
