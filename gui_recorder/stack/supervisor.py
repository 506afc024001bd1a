"""Start and stop the real components of the local stack, in order, by PID;
start again the ones that crash (guacd, MinIO, the dev worker)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gui_recorder.errors import ComponentError
from gui_recorder.stack import checks, sshd
from gui_recorder.stack.certs import Issued
from gui_recorder.stack.process import Managed, RunAs, free_port, reap_stale, write_identities
from gui_recorder.stack.watchdog import Watchdog

log = logging.getLogger(__name__)

SCREEN = "1024x768x24"
# The demo desktops run as this account (created by scripts/setup.sh): a demo
# session must not be a root shell beside var/ (issue 10).
DEMO_USER = "gr-demo"
# A component that dies again this soon after a restart waits longer each time.
RESTART_BACKOFF = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_SECONDS = 30.0


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
    drives: list[str] = field(default_factory=list)  # its data directories: several means erasure-coded


@dataclass
class TargetInfo:
    protocol: str  # "rdp" | "vnc" | "ssh"
    host: str
    port: int
    display: str
    username: str | None
    password: str | None
    private_key: str | None = None  # ssh: the login's key (PEM)
    host_key: str | None = None  # ssh: the server's host key, a known_hosts line

    def guacd_parameters(self) -> dict[str, str]:
        """guacd's parameters for this target (what a stored connection holds)."""
        params = {"hostname": self.host, "port": str(self.port), "password": self.password or ""}
        if self.protocol == "ssh":
            params.update(username=self.username or "")
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
    ssh: TargetInfo | None = None
    pids: dict[str, int] = field(default_factory=dict)
    demo_user: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _free_display(avoid: set[int] = frozenset()) -> int:
    for n in range(90, 400):
        if n not in avoid and not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise ComponentError("no free X display number between :90 and :399")


class Stack:
    """The real components, started on free loopback ports.

    Use as a context manager, or call ``start`` and ``stop``; ``stop`` stops
    every process this object started, newest first, and is safe to repeat.
    Components spawned with ``restart=True`` are started again (same command,
    same port) when they die, once their whole session is gone.

    Call ``start``, ``spawn`` and ``stop`` from one long-lived thread (the
    children's parent-death signal follows the thread that forked them).
    """

    def __init__(self, var_dir: Path, *, guacd=True, minio=True, vnc=True, rdp=True, ssh=True,
                 minio_secret_key: str | None = None, demo_user: str | None = DEMO_USER,
                 guacd_tls: Issued | None = None, guacd_ca: Path | None = None, minio_drives: int = 1):
        self.var_dir = var_dir.resolve()
        # guacd's own certificate (its -C/-K) and the CA a client verifies it with (the readiness probe).
        self._guacd_tls, self._guacd_ca = guacd_tls, guacd_ca
        self._minio_drives = minio_drives  # 4 or more: erasure-coded (survives losing up to half)
        # MinIO ties its data directory to the root credentials: a stack that
        # keeps its data across restarts (the dev stack) must keep its key too.
        self._minio_secret_key = minio_secret_key
        self.wanted = {"guacd": guacd, "minio": minio, "vnc": vnc, "rdp": rdp, "ssh": ssh}
        self.info = StackInfo(var_dir=str(self.var_dir))
        self._procs: list[Managed] = []
        self._logs = self.var_dir / "logs"
        self._identities = self.var_dir / "processes.json"
        # Only root can (and must) drop to the demo account; anyone else already is unprivileged.
        self._demo = RunAs.lookup(demo_user) if demo_user and os.geteuid() == 0 and (vnc or rdp or ssh) else None
        self.info.demo_user = self._demo.name if self._demo else None
        self._private: Path | None = None
        self._bad_displays: set[int] = set()  # where a desktop failed to come up: retried elsewhere
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._watchdog: Watchdog | None = None

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None, *,
              restart: bool = False, demo: bool = False) -> Managed:
        """Start one component; ``demo`` runs it as the unprivileged demo account."""
        with self._lock:
            if self._watchdog is None:
                self._logs.mkdir(parents=True, exist_ok=True)
                self._watchdog = Watchdog(self._logs / "watchdog.log")
            proc = Managed(name, argv, self._logs, env, run_as=self._demo if demo else None, restart=restart)
            self._watchdog.watch(proc.pid)
            self._procs.append(proc)
            self._recorded(proc)
            if restart and self._monitor is None:
                self._monitor = threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True)
                self._monitor.start()
            return proc

    def _recorded(self, proc: Managed) -> None:
        self.info.pids[proc.name] = proc.pid
        write_identities(self._identities, self._procs)

    def _forget(self, proc: Managed) -> None:
        with self._lock:
            self._procs.remove(proc)
            self.info.pids.pop(proc.name, None)
            proc.stop()
            if self._watchdog:
                self._watchdog.forget(proc.pid)
            write_identities(self._identities, self._procs)

    def start(self) -> StackInfo:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        for name in reap_stale(self._identities):
            log.warning("stopped %s, left running by an earlier stack in %s", name, self.var_dir)
        try:
            if self.wanted["minio"]:
                self._start_minio()
            if self.wanted["guacd"]:
                self._start_guacd()
            if self.wanted["vnc"]:
                self._start_target(self._start_vnc)
            if self.wanted["rdp"]:
                self._start_target(self._start_rdp)
            if self.wanted["ssh"]:
                self._start_ssh()
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
                    self._forget(self._procs[-1])
                if attempt == attempts - 1:
                    raise

    def _start_minio(self) -> None:
        port, console = free_port(), free_port()
        data = self.var_dir / "minio-data"
        drives = [data] if self._minio_drives == 1 else [data / f"drive{n}" for n in range(1, self._minio_drives + 1)]
        for drive in drives:
            drive.mkdir(parents=True, exist_ok=True)
        secret = self._minio_secret_key or secrets.token_urlsafe(18)
        info = MinioInfo(f"127.0.0.1:{port}", "gui-recorder", secret, console, [str(d) for d in drives])
        # Several drives in one filesystem are erasure-coded only with MINIO_CI_CD: MinIO otherwise
        # refuses drives that share the root disk (on this machine they are directories, by design).
        erasure = {"MINIO_CI_CD": "1"} if len(drives) > 1 else {}
        proc = self.spawn(
            "minio",
            [minio_binary(), "server", *map(str, drives), "--address", info.endpoint,
             "--console-address", f"127.0.0.1:{console}", "--quiet"],
            env={"MINIO_ROOT_USER": info.access_key, "MINIO_ROOT_PASSWORD": info.secret_key,
                 "MINIO_BROWSER": "off", "MINIO_UPDATE": "off", **erasure},
            restart=True,
        )
        proc.wait_ready(lambda: checks.minio_live(info.endpoint), timeout=60)
        self.info.minio = info

    def _start_guacd(self) -> None:
        port = free_port()
        # Restarted on the same port when it dies: the gateway's settings name it.
        tls = ["-C", str(self._guacd_tls.cert), "-K", str(self._guacd_tls.key)] if self._guacd_tls else []
        proc = self.spawn("guacd", ["guacd", "-b", "127.0.0.1", "-l", str(port), "-f", "-L", "info", *tls],
                          restart=True)
        context = ssl.create_default_context(cafile=str(self._guacd_ca)) if self._guacd_tls else None
        proc.wait_ready(lambda: checks.guacd_answers("127.0.0.1", port, tls=context))
        self.info.guacd = Endpoint("127.0.0.1", port)

    def _start_display(self, name: str) -> str:
        # Another stack (a parallel test run) may claim the same free number first: retry.
        for attempt in range(5):
            display = f":{_free_display(self._bad_displays) + attempt * 7}"
            # No -auth: local clients of any uid may connect (the tests' xdotool and
            # screenshots run as root); -nolisten tcp keeps it off the network. -noreset: an X
            # server resets when its last client leaves, and our readiness probe is that client;
            # an xterm connecting during the reset got "Can't open display" (seen on :92-:94).
            proc = self.spawn(f"{name}-xvfb", ["Xvfb", display, "-screen", "0", SCREEN, "-nolisten", "tcp",
                                               "-noreset"], demo=True)
            try:
                proc.wait_ready(lambda: checks.x_display_owned(display, proc.pid))
                break
            except ComponentError:
                self._forget(proc)
                if attempt == 4:
                    raise
        xterm = self.spawn(
            f"{name}-xterm",
            ["xterm", "-fa", "Monospace", "-fs", "14", "-geometry", "80x24+0+0", "-title", f"demo {name}"],
            env={"DISPLAY": display}, demo=True,
        )
        # Tests type into this window: a desktop without it is not ready (and is retried).
        try:
            xterm.wait_ready(lambda: checks.x_window_shown(display, f"demo {name}"), timeout=15)
        except ComponentError:
            self._bad_displays.add(int(display.lstrip(":")))
            raise
        return display

    def _start_vnc(self) -> None:
        display = self._start_display("vnc")
        port, password = free_port(), secrets.token_urlsafe(6)[:8]
        proc = self.spawn(
            "vnc-x11vnc",
            ["x11vnc", "-display", display, "-rfbport", str(port), "-localhost", "-forever", "-shared",
             "-passwd", password, "-noxdamage", "-quiet"],
            env={"DISPLAY": display}, demo=True,
        )
        proc.wait_ready(lambda: checks.rfb_banner("127.0.0.1", port))
        self.info.vnc = TargetInfo("vnc", "127.0.0.1", port, display, None, password)

    def _start_rdp(self) -> None:
        display = self._start_display("rdp")
        port, username, password = free_port(), "vendor", "Rdp-" + secrets.token_urlsafe(9)
        sam = self._demo_private() / "rdp.sam"
        sam.write_text(
            subprocess.run(["winpr-hash", "-u", username, "-p", password, "-f", "sam"],
                           check=True, capture_output=True, text=True).stdout
        )
        sam.chmod(0o600)
        if self._demo:
            os.chown(sam, self._demo.uid, self._demo.gid)
        proc = self.spawn(
            "rdp-shadow",
            ["freerdp-shadow-cli", f"/port:{port}", "/bind-address:127.0.0.1", "+auth", "/sec:nla",
             f"/sam-file:{sam}"],
            env={"DISPLAY": display}, demo=True,
        )
        proc.wait_ready(lambda: checks.rdp_negotiates("127.0.0.1", port))
        self.info.rdp = TargetInfo("rdp", "127.0.0.1", port, display, username, password)

    def _start_ssh(self) -> None:
        """A real OpenSSH server logging in the demo account (see stack/sshd.py); as root only the demo
        account, otherwise (no root, no namespace) whoever runs the stack, by key alone."""
        import getpass

        port = free_port()
        user = self._demo.name if self._demo else getpass.getuser()
        files = sshd.prepare(self.var_dir / "sshd", self._demo_private(), user, port,
                             uid=self._demo.uid if self._demo else None, gid=self._demo.gid if self._demo else None,
                             with_password=os.geteuid() == 0)
        proc = self.spawn("ssh-sshd", sshd.argv(files, port))
        proc.wait_ready(lambda: sshd.ssh_banner("127.0.0.1", port))
        self.info.ssh = TargetInfo("ssh", "127.0.0.1", port, "", user, files.password, files.private_key,
                                   files.host_key_line)

    def _demo_private(self) -> Path:
        """A directory only the demo account reads (the RDP server's SAM file): not
        under var/, which the demo account must not be able to enter."""
        if self._private is None:
            self._private = Path(tempfile.mkdtemp(prefix="gui-recorder-demo-"))
            if self._demo:
                os.chown(self._private, self._demo.uid, self._demo.gid)
        return self._private

    def _supervise(self) -> None:
        """Start again each ``restart`` component that died, until ``stop``."""
        while not self._stopping.wait(0.2):
            with self._lock:
                dead = [p for p in self._procs if p.restart and p.proc.poll() is not None]
            for proc in dead:
                self._restart(proc)

    def _restart(self, proc: Managed) -> None:
        quick = time.monotonic() - proc.started_at < STABLE_SECONDS
        delay = RESTART_BACKOFF[min(proc.restarts if quick else 0, len(RESTART_BACKOFF) - 1)]
        log.warning("%s exited with status %s; starting it again%s", proc.name, proc.proc.returncode,
                    f" in {delay:.0f} s" if delay else "")
        if self._stopping.wait(delay):
            return
        with self._lock:
            if self._stopping.is_set() or proc not in self._procs:
                return
            old = proc.pid
            try:
                proc.respawn()
            except ComponentError as exc:
                # Not fatal for the stack: the next round of _supervise tries again, later.
                log.error("%s did not come back: %s", proc.name, exc)
            finally:
                if self._watchdog:
                    self._watchdog.forget(old)
                    self._watchdog.watch(proc.pid)
                self._recorded(proc)

    def status(self) -> dict[str, dict]:
        """Each component: running or not, its PID and how often it was restarted."""
        with self._lock:
            return {p.name: {"running": p.proc.poll() is None, "pid": p.pid, "restarts": p.restarts}
                    for p in self._procs}

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            while self._procs:
                self._procs.pop().stop()
            if self.var_dir.is_dir():
                write_identities(self._identities, [])
            if self._watchdog:
                self._watchdog.close()
                self._watchdog = None
        if self._monitor and self._monitor is not threading.current_thread():
            self._monitor.join(10)
        if self._private:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None
