"""An N-hour recording of continued real work, for the long-session render and text benchmarks.

Real guacd 1.3.0 records SEGMENTS consecutive sessions of mixed work on one demo
desktop (bench/make_recording.py's script: typing, scrolling output, idle
reading, a window dragged around), each starting where the previous one left the
screen, each typing a different rotation of the commands. The N-hour recording
is those sessions one after another, cycled, with timestamps shifted so that
time runs on: a maintenance window of several reconnections, not one file
copied. Everything drawn is guacd's own output; only `sync`/`key`/`mouse`
timestamps are rewritten. Cached under var/bench/.

    .venv/bin/python bench/long_recording.py --hours 1
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support/: the scripted clients the tests use

from bench.make_recording import CACHE, COMMANDS  # noqa: E402
from gui_recorder.protocol import Parser, encode  # noqa: E402
from gui_recorder.protocol.timeline import _TIMESTAMP_INDEX, instruction_timestamp  # noqa: E402

SEGMENTS = 3
SEGMENT_MINUTES = 5.0
RECONNECT_MS = 2000  # between two sessions of the window: the admin reconnects


def segment_path(i: int) -> Path:
    return CACHE / f"continued-{i}.guac"


async def _record_segments(count: int, minutes: float) -> None:
    from gui_recorder.stack import Stack
    from support.sessions import open_recorded, wait_written

    with Stack(CACHE / "stack-continued", minio=False, rdp=False) as stack:
        info = stack.info
        env = {"DISPLAY": info.vnc.display, "PATH": "/usr/bin:/bin"}
        second = subprocess.Popen(["xterm", "-geometry", "60x15+500+350", "-title", "second", "-e",
                                   "bash -c 'head -40 /etc/services; sleep infinity'"], env=env)
        try:
            for i in range(count):
                target = segment_path(i)
                target.unlink(missing_ok=True)
                client = await open_recorded(info, CACHE, target.name)
                deadline = time.monotonic() + minutes * 60
                step = 0
                while time.monotonic() < deadline:
                    # Each session types its own rotation, so no two segments show the same screens.
                    await client.type(COMMANDS[(step + 4 * i) % len(COMMANDS)] + "\n", pause=0.06)
                    await asyncio.sleep(4)
                    if step % 3 == (2 + i) % 3:
                        for x in range(100, 600, 25):
                            subprocess.run(["xdotool", "search", "--name", "second", "windowmove",
                                            str(x if i % 2 == 0 else 700 - x), str(300 - 40 * i)],
                                           env=env, capture_output=True)
                            await asyncio.sleep(0.05)
                    await asyncio.sleep(8)
                    step += 1
                await client.close()
                await wait_written(target)
        finally:
            second.terminate()
            second.wait()


def ensure_segments(count: int = SEGMENTS, minutes: float = SEGMENT_MINUTES) -> list[Path]:
    paths = [segment_path(i) for i in range(count)]
    if not all(p.exists() and p.stat().st_size > 0 for p in paths):
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"recording {count} continued sessions of {minutes:g} min through real guacd (once; cached)...",
              flush=True)
        asyncio.run(_record_segments(count, minutes))
    return paths


def _instructions(path: Path) -> Iterator[list[str]]:
    parser = Parser()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield from parser.feed(chunk)


def _span(path: Path) -> tuple[int, int]:
    first = last = None
    for ins in _instructions(path):
        ts = instruction_timestamp(ins)
        if ts is not None:
            first = ts if first is None else first
            last = ts if last is None else max(last, ts)
    return first or 0, last or 0


def long_path(hours: float) -> Path:
    return CACHE / f"continued-{hours:g}h.guac"


def ensure_long(hours: float) -> Path:
    """The N-hour recording: the continued segments cycled until N hours of session time."""
    out = long_path(hours)
    if out.exists() and out.stat().st_size > 0:
        return out
    segments = ensure_segments()
    spans = [_span(p) for p in segments]
    total_ms = int(hours * 3600 * 1000)
    tmp = out.with_name(out.name + ".part")
    now = 0  # the shifted time the next segment starts at
    with open(tmp, "wb") as f:
        i = 0
        while now < total_ms:
            path, (first, last) = segments[i % len(segments)], spans[i % len(segments)]
            shift = now - first
            buf = []
            for ins in _instructions(path):
                index = _TIMESTAMP_INDEX.get(ins[0])
                ts = instruction_timestamp(ins)
                if ts is not None:
                    if ts - first + now > total_ms:
                        break
                    ins = list(ins)
                    ins[index] = str(ts + shift)
                buf.append(encode(ins))
                if len(buf) >= 4096:
                    f.write("".join(buf).encode())
                    buf = []
            f.write("".join(buf).encode())
            now += last - first + RECONNECT_MS
            i += 1
    tmp.replace(out)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1)
    print(ensure_long(ap.parse_args().hours))
