"""Benchmark: Guacamole codec parse throughput on a real recording made by the stack.

Prints MB/s and instructions/s for the incremental parser (fed 64 KiB chunks, as
the gateway reads them) and for the encoder. The recording is made once by real
guacd (its own `recording-path`) from the demo VNC desktop while xterm scrolls,
and cached under var/bench/.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support/: the scripted clients the tests use

from gui_recorder.protocol import Parser, encode  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from support.sessions import open_recorded  # noqa: E402

CACHE = ROOT / "var" / "bench"
RECORDING = CACHE / "codec-vnc.guac"


async def record(seconds: float) -> None:
    with Stack(CACHE / "stack", minio=False, rdp=False) as stack:
        info = stack.info
        client = await open_recorded(info, CACHE, RECORDING.name)
        typer = subprocess.Popen(
            ["bash", "-c", "for i in $(seq 1 400); do xdotool type --delay 1 'ls -la /usr/lib; '; xdotool key Return; done"],
            env={"DISPLAY": info.vnc.display, "PATH": "/usr/bin:/bin"},
        )
        await asyncio.sleep(seconds)  # the client echoes guacd's syncs meanwhile: frames keep coming
        typer.kill()
        typer.wait()
        await client.close()


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    if not RECORDING.exists() or RECORDING.stat().st_size < 1_000_000:
        RECORDING.unlink(missing_ok=True)
        print("recording 20 s of scrolling xterm through real guacd...", flush=True)
        asyncio.run(record(20))
    data = RECORDING.read_bytes()
    chunk = 65536
    best_parse = float("inf")
    count = 0
    for _ in range(5):
        start = time.perf_counter()
        parser = Parser()
        instructions = []
        for i in range(0, len(data), chunk):
            instructions += parser.feed(data[i : i + chunk])
        best_parse = min(best_parse, time.perf_counter() - start)
        count = len(instructions)
    best_encode = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        encoded = "".join([encode(i) for i in instructions]).encode()
        best_encode = min(best_encode, time.perf_counter() - start)
    assert encoded == data, "re-encoding a guacd recording must give the same bytes"
    mb = len(data) / 1e6
    print(f"recording: {RECORDING} ({mb:.1f} MB, {count} instructions)")
    print(f"parse:  {mb / best_parse:8.1f} MB/s  {count / best_parse:12,.0f} instructions/s  (best of 5, 64 KiB chunks)")
    print(f"encode: {mb / best_encode:8.1f} MB/s  {count / best_encode:12,.0f} instructions/s  (best of 5)")


if __name__ == "__main__":
    main()
