"""Make a real guacd recording of mixed desktop work, for the render and OCR benchmarks.

Real guacd 1.3.0 records (its own `recording-path`) a VNC session on the demo
desktop for the given minutes while a script does what an admin does: types
commands, lets output scroll, reads (idle), and drags a second window around.
Cached under var/bench/; made once (it takes as long as the session it records).

    .venv/bin/python bench/make_recording.py [--minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support/: the scripted clients the tests use

from gui_recorder.stack import Stack  # noqa: E402
from support.sessions import open_recorded  # noqa: E402

CACHE = ROOT / "var" / "bench"
COMMANDS = ["uname -a", "ls -la /etc", "df -h", "cat /etc/os-release", "ps aux | head -30",
            "grep -r ssh /etc/ssh/sshd_config | head", "net user administrator /domain", "ls -la /usr/lib | tail -40",
            "echo quarterly maintenance window approved", "systemctl list-units --type=service | head -25"]


def recording_path(minutes: float) -> Path:
    return CACHE / f"office-{minutes:g}min.guac"


async def record(minutes: float) -> Path:
    target = recording_path(minutes)
    with Stack(CACHE / "stack-mixed", minio=False, rdp=False) as stack:
        info = stack.info
        env = {"DISPLAY": info.vnc.display, "PATH": "/usr/bin:/bin"}
        second = subprocess.Popen(["xterm", "-geometry", "60x15+500+350", "-title", "second", "-e",
                                   "bash -c 'head -40 /etc/services; sleep infinity'"], env=env)
        client = await open_recorded(info, CACHE, target.name)
        deadline = time.monotonic() + minutes * 60
        step = 0
        while time.monotonic() < deadline:
            await client.type(COMMANDS[step % len(COMMANDS)] + "\n", pause=0.06)
            await asyncio.sleep(4)  # reading the output
            if step % 3 == 2:  # drag the second window across the screen
                for x in range(100, 600, 25):
                    subprocess.run(["xdotool", "search", "--name", "second", "windowmove", str(x), "300"],
                                   env=env, capture_output=True)
                    await asyncio.sleep(0.05)
            await asyncio.sleep(8)  # idle: thinking, a phone call
            step += 1
        await client.close()
        second.terminate()
        second.wait()
    time.sleep(1)
    return target


def ensure(minutes: float) -> Path:
    path = recording_path(minutes)
    if not path.exists() or path.stat().st_size == 0:
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"recording {minutes:g} minutes of mixed work through real guacd (once; cached in {path})...",
              flush=True)
        asyncio.run(record(minutes))
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5)
    print(ensure(ap.parse_args().minutes))
