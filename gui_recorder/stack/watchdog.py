"""The stack's watchdog: stops every component when the stack's process dies.

``PR_SET_PDEATHSIG`` reaches only a direct child; guacd's per-connection
children, a component that ignores SIGTERM, or one started from a thread that
has ended would survive a SIGKILLed ``gui-recorder dev``. This small process,
in a session of its own (a Ctrl-C to the terminal does not reach it), reads
lines ``+SID`` / ``-SID`` on its stdin as the stack starts and stops components
(each leads a session of its own; guacd's per-connection children stay in it).
End of input without a closing ``.`` line means the stack's process is gone:
every process of every session still listed gets SIGTERM, then SIGKILL after a
grace period.

It is run as a script (``python -I watchdog.py``) and uses the standard library
only, so it starts fast and does not depend on the package importing cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

GRACE_SECONDS = 5.0


class Watchdog:
    """The stack's side: start the watchdog process and keep it told."""

    def __init__(self, log_path: Path):
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _send(self, line: str) -> None:
        with self._lock:
            try:
                self._proc.stdin.write(f"{line}\n".encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # the watchdog is gone: the other two layers (pdeathsig, reap_stale) remain

    def watch(self, sid: int) -> None:
        self._send(f"+{sid}")

    def forget(self, sid: int) -> None:
        self._send(f"-{sid}")

    def close(self) -> None:
        """A clean stop: the stack stopped its sessions itself."""
        self._send(".")
        with self._lock:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _members(sessions: set[int]) -> list[tuple[int, int]]:
    """(pid, sid) of every live process in one of ``sessions`` (the same scan as
    process.session_members, repeated here to keep this script stand-alone)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[3]) in sessions:
                found.append((int(entry), int(fields[3])))
    return found


def _signal_all(sessions: set[int], sig: int) -> None:
    for pid, _ in _members(sessions):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sessions: set[int] = set()
    closed = False
    for raw in sys.stdin.buffer:
        line = raw.strip().decode(errors="replace")
        if line == ".":
            closed = True
            break
        try:
            if line.startswith("+"):
                sessions.add(int(line[1:]))
            elif line.startswith("-"):
                sessions.discard(int(line[1:]))
        except ValueError:
            continue
    if closed or not sessions:
        return 0
    print(f"watchdog: the stack's process is gone; stopping sessions {sorted(sessions)}", flush=True)
    _signal_all(sessions, signal.SIGTERM)
    _signal_all(sessions, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        sessions = {sid for _, sid in _members(sessions)}
        if not sessions:
            return 0
        time.sleep(0.05)
    print(f"watchdog: SIGKILL to what is left of {sorted(sessions)}", flush=True)
    _signal_all(sessions, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
