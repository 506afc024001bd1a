"""Benchmark: what the gateway adds to a guacd connection, with recording on.

For 1, 10 and 50 concurrent sessions it measures, side by side in one run:
- the round-trip latency of an input event answered at once by the server,
  directly against the server and through the gateway (WebSocket -> relay ->
  recorder -> guacd protocol), and the difference (p50, p99);
- the gateway process's CPU time per MB relayed.

The server is `bench/guacd_standin.py`, a guacd STAND-IN used only as a load
tool: it replays a real guacd recording (made by `bench/codec.py` through the
real stack) to every session, and answers each `key` press with `pong`.
Recording goes to the real spool and a real MinIO.

    .venv/bin/python bench/gateway.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import websockets  # noqa: E402

from gui_recorder.guacd import ClientInfo, ConnectionDefinition, open_guacd  # noqa: E402
from gui_recorder.protocol import Parser, encode  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.stack.checks import http_ok  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402

RECORDING = ROOT / "var" / "bench" / "codec-vnc.guac"
PROBE_INTERVAL = 0.05


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Probe:
    """Sends key presses, times the stand-in's pong, echoes syncs like a browser."""

    def __init__(self, session_no: int):
        self.base = session_no * 1_000_000
        self.sent: dict[str, float] = {}
        self.rtts: list[float] = []
        self.bytes = 0
        self.n = 0

    def next_press(self) -> str:
        self.n += 1
        key = str(self.base + self.n)
        self.sent[key] = time.perf_counter()
        return encode(("key", key, "1")) + encode(("key", key, "0"))

    def received(self, instructions) -> list[str]:
        replies = []
        for ins in instructions:
            if ins[0] == "pong":
                started = self.sent.pop(ins[1], None)
                if started is not None:
                    self.rtts.append((time.perf_counter() - started) * 1000)
            elif ins[0] == "sync":
                replies.append(encode(("sync", ins[1])))
        return replies


async def direct_session(port: int, probe: Probe, seconds: float) -> None:
    conn = await open_guacd("127.0.0.1", port, ConnectionDefinition("vnc", {}), ClientInfo())

    async def reader():
        while batch := await conn.read():
            probe.bytes += sum(len(encode(i)) for i in batch)
            replies = probe.received(batch)
            if replies:
                await conn.send_raw("".join(replies).encode())

    task = asyncio.create_task(reader())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await conn.send_raw(probe.next_press().encode())
        await asyncio.sleep(PROBE_INTERVAL)
    task.cancel()
    await conn.close()


async def gateway_session(base: str, token: str, probe: Probe, seconds: float) -> None:
    url = base.replace("http", "ws", 1) + f"api/tunnel?token={token}&width=1024&height=768&dpi=96"
    async with websockets.connect(url, subprotocols=["guacamole"], max_size=None) as ws:
        parser = Parser()

        async def reader():
            async for message in ws:
                probe.bytes += len(message)
                replies = probe.received(parser.feed_text(message))
                if replies:
                    await ws.send("".join(replies))

        task = asyncio.create_task(reader())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await ws.send(probe.next_press())
            await asyncio.sleep(PROBE_INTERVAL)
        task.cancel()
        await ws.send(encode(("disconnect",)))


def api(base: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    req = urllib.request.Request(base + path.lstrip("/"), method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


async def run_level(n: int, seconds: float, standin_port: int, base: str, admin: str, gw: psutil.Process):
    direct = [Probe(i) for i in range(n)]
    await asyncio.gather(*(direct_session(standin_port, p, seconds) for p in direct))
    tokens = [api(base, "/api/connections/bench/tunnel-token", {}, admin)["token"] for _ in range(n)]
    via = [Probe(i) for i in range(n)]
    cpu0 = sum(gw.cpu_times()[:2])
    await asyncio.gather(*(gateway_session(base, t, p, seconds) for t, p in zip(tokens, via)))
    cpu = sum(gw.cpu_times()[:2]) - cpu0
    d = [r for p in direct for r in p.rtts]
    g = [r for p in via for r in p.rtts]
    mb = sum(p.bytes for p in via) / 1e6
    return {
        "sessions": n,
        "direct_p50": percentile(d, 50), "direct_p99": percentile(d, 99),
        "gateway_p50": percentile(g, 50), "gateway_p99": percentile(g, 99),
        "added_p50": percentile(g, 50) - percentile(d, 50), "added_p99": percentile(g, 99) - percentile(d, 99),
        "mb": mb, "cpu_ms_per_mb": cpu * 1000 / mb if mb else float("nan"), "probes": len(g),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--levels", default="1,10,50")
    args = ap.parse_args()
    if not RECORDING.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "codec.py")], check=True)
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "stack", guacd=False, vnc=False, rdp=False) as stack:
        minio = stack.info.minio
        standin_port, gw_port = free_port(), free_port()
        standin = subprocess.Popen([sys.executable, str(ROOT / "bench" / "guacd_standin.py"), str(RECORDING),
                                    "--port", str(standin_port)], stdout=subprocess.DEVNULL)
        admin_password = secrets.token_urlsafe(12)
        env = {**os.environ, "GUI_RECORDER_VAR_DIR": str(Path(tmp) / "var"),
               "GUI_RECORDER_SECRET_KEY": secrets.token_urlsafe(32),
               "GUI_RECORDER_ADMIN_PASSWORD": admin_password, "GUI_RECORDER_PORT": str(gw_port),
               "GUI_RECORDER_GUACD_PORT": str(standin_port), "GUI_RECORDER_S3_ENDPOINT": minio.endpoint,
               "GUI_RECORDER_S3_ACCESS_KEY": minio.access_key, "GUI_RECORDER_S3_SECRET_KEY": minio.secret_key,
               "GUI_RECORDER_LOG_LEVEL": "WARNING",
               "GUI_RECORDER_MFA_ROLES": "[]"}  # the admin signs in by API: no second factor here
        gateway = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gui-recorder"), "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{gw_port}/"
        try:
            deadline = time.monotonic() + 30
            while not http_ok(base + "api/health"):
                if time.monotonic() > deadline or gateway.poll() is not None:
                    raise SystemExit("the gateway did not start")
                time.sleep(0.1)
            admin = api(base, "/api/auth/login", {"username": "admin", "password": admin_password})["token"]
            api(base, "/api/admin/connections", {
                "id": "bench", "name": "bench", "protocol": "vnc", "host": "127.0.0.1", "port": 5900,
                "password": "unused", "allowed_roles": ["admin"]}, admin)
            gw = psutil.Process(gateway.pid)
            print(f"recording replayed: {RECORDING} ({RECORDING.stat().st_size / 1e6:.1f} MB), "
                  f"{args.seconds:.0f} s per level, probe every {PROBE_INTERVAL * 1000:.0f} ms per session")
            print(f"{'sessions':>8} {'direct p50/p99 ms':>18} {'gateway p50/p99 ms':>19} "
                  f"{'added p50/p99 ms':>17} {'MB relayed':>10} {'CPU ms/MB':>9} {'probes':>7}")
            for n in map(int, args.levels.split(",")):
                r = asyncio.run(run_level(n, args.seconds, standin_port, base, admin, gw))
                print(f"{r['sessions']:>8} {r['direct_p50']:>8.2f}/{r['direct_p99']:<9.2f} "
                      f"{r['gateway_p50']:>8.2f}/{r['gateway_p99']:<10.2f} {r['added_p50']:>7.2f}/{r['added_p99']:<9.2f} "
                      f"{r['mb']:>10.1f} {r['cpu_ms_per_mb']:>9.1f} {r['probes']:>7}", flush=True)
        finally:
            gateway.terminate()
            standin.terminate()
            gateway.wait(10)
            standin.wait(10)


if __name__ == "__main__":
    main()
