"""Benchmark: the live-watch delay, how much later a watcher receives a screen update than its owner.

A real guacd and a real VNC desktop (x11vnc, an xterm): the owner types into the xterm through the
gateway, which makes screen updates; 1, then 20 watchers join the session through the gateway's
`/api/watch`. guacd ends each frame with a `sync` carrying its timestamp, and sends the same frame to
every user of the connection, so a frame's arrival at the owner and at each watcher is matched by that
timestamp; the delay is watcher arrival - owner arrival (p50, p99), per number of watchers.

    .venv/bin/python bench/watch.py [--seconds 10] [--levels 1,20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import websockets  # noqa: E402

from gateway import api, percentile, serve_gateway  # noqa: E402
from gui_recorder.protocol import Parser, encode  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.text.keys import keystroke  # noqa: E402


class Screen:
    """One user's tunnel: when each frame (by guacd's sync timestamp) arrived."""

    def __init__(self, ws):
        self.ws, self.parser, self.frames = ws, Parser(), {}
        self.first_frame = asyncio.Event()

    async def pump(self) -> None:
        async for message in self.ws:
            now = time.perf_counter()
            replies = []
            for ins in self.parser.feed_text(message):
                if ins[0] == "sync":
                    self.frames.setdefault(ins[1], now)
                    replies.append(encode(("sync", ins[1])))  # as guacamole-common-js acknowledges frames
                    self.first_frame.set()
            if replies:
                await self.ws.send("".join(replies))


async def level(base: str, admin: str, watchers: int, seconds: float) -> list[float]:
    ws_base = base.replace("http", "ws", 1)
    token = api(base, "/api/connections/watch-bench/tunnel-token", {}, admin)["token"]
    async with websockets.connect(f"{ws_base}api/tunnel?token={token}&width=1024&height=768&dpi=96",
                                  subprotocols=["guacamole"], max_size=None) as owner_ws:
        session_id = Parser().feed_text(await owner_ws.recv())[0][1]
        owner = Screen(owner_ws)
        tasks = [asyncio.create_task(owner.pump())]
        await asyncio.wait_for(owner.first_frame.wait(), 60)
        screens = []
        for _ in range(watchers):
            wt = api(base, f"/api/sessions/{session_id}/watch-token", {}, admin)["token"]
            ws = await websockets.connect(f"{ws_base}api/watch?token={wt}&width=1024&height=768",
                                          subprotocols=["guacamole"], max_size=None)
            screen = Screen(ws)
            screens.append(screen)
            tasks.append(asyncio.create_task(screen.pump()))
        await asyncio.gather(*(asyncio.wait_for(s.first_frame.wait(), 60) for s in screens))
        measured_from = time.perf_counter()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # typing: each character is a screen update
            await owner_ws.send("".join(map(keystroke, "watch ")))
            await asyncio.sleep(0.05)
        await owner_ws.send(keystroke("\n"))
        for task in tasks:
            task.cancel()
        for screen in screens:
            await screen.ws.close()
    print(f"  frames received: owner {len(owner.frames)}, watchers {sorted({len(s.frames) for s in screens})}")
    delays = []
    for screen in screens:
        for ts, at in screen.frames.items():
            shown = owner.frames.get(ts)
            if shown is not None and shown >= measured_from:
                delays.append((at - shown) * 1000)
    return delays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--levels", default="1,20")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "stack", rdp=False, ssh=False) as stack:
        info = stack.info
        gateway, base, admin = serve_gateway(Path(tmp), info.minio, info.guacd.host, info.guacd.port)
        try:
            api(base, "/api/admin/connections", {
                "id": "watch-bench", "name": "watch bench", "protocol": "vnc", "host": info.vnc.host,
                "port": info.vnc.port, "password": info.vnc.password, "allowed_roles": ["admin"]}, admin)
            print(f"owner types into a real xterm on a real VNC desktop through real guacd, "
                  f"{args.seconds:.0f} s per level")
            print(f"{'watchers':>8} {'frames matched':>14} {'added p50 ms':>12} {'added p99 ms':>12} {'max ms':>8}")
            for n in map(int, args.levels.split(",")):
                delays = asyncio.run(level(base, admin, n, args.seconds))
                print(f"{n:>8} {len(delays):>14} {percentile(delays, 50):>12.2f} {percentile(delays, 99):>12.2f} "
                      f"{max(delays, default=float('nan')):>8.2f}", flush=True)
        finally:
            gateway.terminate()
            gateway.wait(30)


if __name__ == "__main__":
    main()
