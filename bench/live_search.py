"""Benchmark: time from typing a phrase in a live session to finding it with the search API.

Real parts throughout: the stack (guacd, the VNC demo desktop, MinIO), the
gateway and the worker as processes, a scripted browser over the WebSocket
tunnel. Types `echo <phrase>` and Enter, and polls GET /api/search for the
phrase as typed text (from the keys) and as screen text (OCR of the echo),
while the session keeps running. One stack per live-pass interval, printed
side by side.

    .venv/bin/python bench/live_search.py [--phrases 8] [--intervals 5,1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support/: the scripted clients the tests use
sys.path.insert(0, str(ROOT / "bench"))  # gateway.py: the benchmarks' one percentile

import httpx  # noqa: E402

from gateway import percentile  # noqa: E402

from gui_recorder.cli import settings_env  # noqa: E402
from gui_recorder.stack.demo import seed_demo  # noqa: E402
from gui_recorder.settings import Settings  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.stack.checks import http_ok  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402
from support.clients import TunnelClient  # noqa: E402


async def session(base: str, vendor: str, auditor: str, phrases: int) -> dict[str, list[float]]:
    """Seconds from each phrase's Enter to its search hit, by source (inf: not found in 120 s)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        token = (await http.post("/api/connections/demo-vnc/tunnel-token",
                                 headers={"Authorization": f"Bearer {vendor}"})).json()["token"]
        latencies: dict[str, list[float]] = {"typed": [], "screen": []}
        async with await TunnelClient.open(base, token) as client:
            await client.first_frame()
            await asyncio.sleep(1)  # the shell's prompt, before the first phrase
            for _ in range(phrases):
                phrase = "bench" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(8))
                await client.type(f"echo {phrase}\n", pause=0.02)
                typed = time.monotonic()
                waiting = set(latencies)
                while waiting and time.monotonic() - typed < 120:
                    for source in list(waiting):
                        body = (await http.get("/api/search", params={"q": phrase, "source": source},
                                               headers={"Authorization": f"Bearer {auditor}"})).json()
                        if body.get("results"):
                            latencies[source].append(time.monotonic() - typed)
                            waiting.discard(source)
                    await asyncio.sleep(0.1)
                for source in waiting:
                    latencies[source].append(float("inf"))
            await client.disconnect()
        return latencies


def run(interval: float, phrases: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "stack", rdp=False) as stack:
        info = stack.info
        accounts = {r: f"{r}-{secrets.token_urlsafe(8)}" for r in ("admin", "operator", "vendor", "auditor")}
        settings = Settings(var_dir=Path(tmp) / "var", port=free_port(), secret_key=secrets.token_urlsafe(32),
                            admin_password=accounts["admin"], guacd_host=info.guacd.host, guacd_port=info.guacd.port,
                            s3_endpoint=info.minio.endpoint, s3_access_key=info.minio.access_key,
                            s3_secret_key=info.minio.secret_key, live_text_interval_seconds=interval,
                            mfa_roles=[])  # measures search, not the second factor of admins and auditors
        seed_demo(settings, info, accounts)
        env = {**os.environ, **settings_env(settings), "GUI_RECORDER_LOG_LEVEL": "WARNING"}
        gateway = stack.spawn("gateway", [sys.executable, "-m", "gui_recorder.cli", "serve"], env=env)
        stack.spawn("worker", [sys.executable, "-m", "gui_recorder.cli", "worker"], env=env)
        base = f"http://127.0.0.1:{settings.port}/"
        gateway.wait_ready(lambda: http_ok(base + "api/health"))
        tokens = {r: httpx.post(base + "api/auth/login", json={"username": r, "password": accounts[r]}).json()["token"]
                  for r in ("vendor", "auditor")}
        return asyncio.run(session(base, tokens["vendor"], tokens["auditor"], phrases))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phrases", type=int, default=8)
    ap.add_argument("--intervals", default="5,1", help="live-pass intervals to compare, seconds")
    args = ap.parse_args()
    print(f"{args.phrases} phrases per run; seconds from Enter to the search hit   [targets: typed <= 5 s p95, "
          f"screen <= 30 s p95]")
    print(f"{'live pass':>9} {'source':>7} {'found':>6} {'median':>7} {'p95':>6} {'max':>6}")
    for interval in (float(i) for i in args.intervals.split(",")):
        for source, values in run(interval, args.phrases).items():
            found = [v for v in values if v != float("inf")]
            figures = f"{statistics.median(found):>7.1f} {percentile(values, 95):>6.1f} {max(values):>6.1f}" if found else ""
            print(f"{interval:>7.0f} s {source:>7} {len(found):>3}/{len(values):<2} {figures}", flush=True)


if __name__ == "__main__":
    main()
