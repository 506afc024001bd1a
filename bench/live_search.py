"""Benchmark: time from typing a phrase in a live session to finding it with the search API.

Real parts throughout: the stack (guacd, the VNC demo desktop, MinIO), the
gateway and the worker as processes, a scripted browser over the WebSocket
tunnel. Types one unique phrase every few seconds and polls GET /api/search
for each until it appears, while the session keeps running.

    .venv/bin/python bench/live_search.py [--phrases 8]
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

import httpx  # noqa: E402

from gui_recorder.cli import settings_env  # noqa: E402
from gui_recorder.stack.demo import seed_demo  # noqa: E402
from gui_recorder.settings import Settings  # noqa: E402
from gui_recorder.stack import Stack  # noqa: E402
from gui_recorder.stack.checks import http_ok  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402
from support.clients import TunnelClient  # noqa: E402


async def session(base: str, vendor: str, auditor: str, phrases: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        token = (await http.post("/api/connections/demo-vnc/tunnel-token",
                                 headers={"Authorization": f"Bearer {vendor}"})).json()["token"]
        latencies = []
        async with await TunnelClient.open(base, token) as client:
            await client.first_frame()
            await asyncio.sleep(1)  # the shell's prompt, before the first phrase
            for _ in range(phrases):
                phrase = "bench" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(8))
                await client.type(f"echo {phrase}\n", pause=0.02)
                typed = time.monotonic()
                while time.monotonic() - typed < 120:
                    body = (await http.get("/api/search", params={"q": phrase},
                                           headers={"Authorization": f"Bearer {auditor}"})).json()
                    if body.get("results"):
                        latencies.append(time.monotonic() - typed)
                        break
                    await asyncio.sleep(0.25)
                else:
                    latencies.append(float("inf"))
            await client.disconnect()
        return latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phrases", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "stack", rdp=False) as stack:
        info = stack.info
        accounts = {r: f"{r}-{secrets.token_urlsafe(8)}" for r in ("admin", "operator", "vendor", "auditor")}
        settings = Settings(var_dir=Path(tmp) / "var", port=free_port(), secret_key=secrets.token_urlsafe(32),
                            admin_password=accounts["admin"], guacd_host=info.guacd.host, guacd_port=info.guacd.port,
                            s3_endpoint=info.minio.endpoint, s3_access_key=info.minio.access_key,
                            s3_secret_key=info.minio.secret_key,
                            mfa_roles=[])  # measures search, not the second factor of admins and auditors
        seed_demo(settings, info, accounts)
        env = {**os.environ, **settings_env(settings), "GUI_RECORDER_LOG_LEVEL": "WARNING"}
        gateway = stack.spawn("gateway", [sys.executable, "-m", "gui_recorder.cli", "serve"], env=env)
        stack.spawn("worker", [sys.executable, "-m", "gui_recorder.cli", "worker"], env=env)
        base = f"http://127.0.0.1:{settings.port}/"
        gateway.wait_ready(lambda: http_ok(base + "api/health"))
        tokens = {r: httpx.post(base + "api/auth/login", json={"username": r, "password": accounts[r]}).json()["token"]
                  for r in ("vendor", "auditor")}
        latencies = asyncio.run(session(base, tokens["vendor"], tokens["auditor"], args.phrases))
    found = [x for x in latencies if x != float("inf")]
    print(f"live search: {len(found)}/{len(latencies)} phrases found while the session ran "
          f"(segments sealed every {settings.segment_max_seconds:.0f} s, live pass every "
          f"{settings.live_text_interval_seconds:.0f} s)")
    if found:
        print(f"typing -> searchable: median {statistics.median(found):.1f} s, max {max(found):.1f} s   "
              f"[target <= 30 s]")


if __name__ == "__main__":
    main()
