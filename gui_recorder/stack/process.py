"""Start a child process, wait for real readiness, stop it (its whole session) by PID.

A component must never outlive the program that started it (issue 10: a killed
``gui-recorder dev`` left MinIO, guacd, Xvfb, x11vnc and freerdp-shadow holding
ports and displays). Three layers see to it:

* each child asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``);
* the stack's watchdog (``watchdog.py``) stops every session it was told
  about when the stack's process goes away, SIGKILL included;
* what a previous run left anyway is found by its recorded identity (PID and
  kernel start time, so a reused PID is never taken for ours) and stopped
  before a new stack starts (``reap_stale``).
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gui_recorder.errors import ComponentError

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account a child runs as (the demo desktops: never root)."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def lookup(cls, name: str) -> "RunAs":
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ComponentError(
                f"the demo desktop user {name} does not exist: run ./scripts/setup.sh (it creates it)"
            ) from None
        return cls(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def environment(self) -> dict[str, str]:
        """A clean environment: nothing of ours (settings, secrets) reaches the demo desktop."""
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.home, "USER": self.name,
                "LOGNAME": self.name, "SHELL": "/bin/bash", "LANG": os.environ.get("LANG", "C.UTF-8")}


def _die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the child after the uid change (which would clear it), before exec.
        # The kernel sends the signal when the *thread* that forked us ends: the
        # stack spawns only from threads that live as long as the stack.
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    return preexec


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): with the PID, an identity."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``.

    Each component leads a session of its own (``start_new_session``). The
    session, not the process group, is what holds all of it: guacd puts each
    connection's child in a process group of its own, in guacd's session, and
    those children keep guacd's listening socket open.
    """
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def signal_session(sid: int, sig: int) -> None:
    for pid in session_members(sid):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_session(sid: int, timeout: float = 5.0) -> None:
    """SIGTERM the whole session, then SIGKILL whatever is left, and wait until it is gone
    (so a restarted guacd finds its port free)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        signal_session(sid, sig)
        # A stopped process (a stuck guacd child) acts on SIGTERM only once continued.
        signal_session(sid, signal.SIGCONT)
        deadline = time.monotonic() + timeout
        while session_members(sid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not session_members(sid):
            return


class Managed:
    """One child process leading its own session, with its output in a log file.

    ``restart`` marks a component the stack's supervisor starts again when it
    dies; ``ready`` is its protocol-level readiness check, used again then.
    """

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None, *,
                 run_as: RunAs | None = None, restart: bool = False):
        self.name = name
        self.argv = argv
        self.run_as = run_as
        self.restart = restart
        self.ready: Callable[[], bool] | None = None
        self.ready_timeout = 30.0
        self.restarts = 0
        self.started_at = 0.0
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        base = run_as.environment() if run_as else dict(os.environ)
        self._env = {**base, **(env or {})}
        self._log = open(self.log_path, "ab")
        try:
            self._spawn()
        except BaseException:
            self._log.close()
            raise

    def _spawn(self) -> None:
        owner = {}
        if self.run_as:
            owner = dict(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[], cwd=self.run_as.home)
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
                **owner,
            )
        except OSError as exc:
            raise ComponentError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        self.started_at = time.monotonic()
        self.identity = {"pid": self.proc.pid, "sid": self.proc.pid, "start": start_time(self.proc.pid)}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, check: Callable[[], bool], timeout: float = 30.0) -> None:
        """Poll a protocol-level check until it passes; fail fast if the process dies."""
        self.ready, self.ready_timeout = check, timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ComponentError(
                    f"{self.name} exited with status {self.proc.returncode} before it was ready; "
                    f"see {self.log_path}:\n{self.tail()}"
                )
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise ComponentError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}:\n{self.tail()}")

    def respawn(self) -> None:
        """Start the same command again, after the old session is gone entirely."""
        stop_session(self.proc.pid)
        self.note(f"restarting {self.name} (exit status {self.proc.returncode})")
        self._spawn()
        self.restarts += 1
        if self.ready:
            self.wait_ready(self.ready, self.ready_timeout)

    def note(self, line: str) -> None:
        """A line of the supervisor's own in the component's log, where one looks first."""
        try:
            self._log.write(f"[gui-recorder supervisor] {line}\n".encode())
            self._log.flush()
        except (OSError, ValueError):
            pass

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            signal_session(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_session(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        # Whatever the leader left in its session (guacd's connection processes) goes too.
        stop_session(self.proc.pid, timeout)
        self._log.close()


def _me() -> dict:
    return {"pid": os.getpid(), "start": start_time(os.getpid())}


def write_identities(path: Path, procs: list[Managed]) -> None:
    """Record who runs now (and which process started them), for ``reap_stale``
    after a run that could not clean up."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"owner": _me(),
                   "processes": {p.name: {**p.identity, "restarts": p.restarts} for p in procs}}, out, indent=2)
    os.replace(tmp, path)


def reap_stale(path: Path) -> list[str]:
    """Stop the sessions a previous run recorded in ``path`` and left running.

    A session counts as ours only while its leader is gone or still has the
    recorded start time: a PID the kernel handed to someone else is left alone
    (a session ID is not reused as a PID while any member of it lives).
    """
    try:
        recorded = json.loads(path.read_text())
        owner, processes = recorded["owner"], recorded["processes"]
        owner_pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if owner_pid != os.getpid() and start_time(owner_pid) == owner.get("start") and processes:
        raise ComponentError(f"another stack (PID {owner_pid}) is running in {path.parent}: "
                             "stop it first, or use another directory")
    reaped = []
    for name, ident in processes.items() if isinstance(processes, dict) else ():
        try:
            pid, sid, start = int(ident["pid"]), int(ident["sid"]), ident.get("start")
        except (KeyError, TypeError, ValueError):
            continue
        leader = start_time(pid)
        if leader is not None and leader != start:
            continue
        if session_members(sid):
            stop_session(sid)
            reaped.append(name)
    return reaped
