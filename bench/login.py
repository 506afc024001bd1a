"""What an online password guesser gets from the gateway's sign-in (prints figures).

A real gateway (uvicorn, in this process, on a loopback port; SQLite; no other
component is needed to sign in) and one attacker client, which is the load
generator here: it sends wrong passwords as fast as the gateway answers, for
``--seconds``, in two runs side by side:

* one account from one address (the throttle per account), then
* many account names from the same address (the throttle per address; it
  starts with the first run's failures, as a real attacker's second try would).

Printed per run: requests per second answered, guesses per second that were
really checked (an argon2 verification: 401), refusals per second that cost
nothing (429 with Retry-After). Only the checked ones are guesses.

    .venv/bin/python bench/login.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from gui_recorder.cli import server_config  # noqa: E402
from gui_recorder.gateway.app import create_app  # noqa: E402
from gui_recorder.settings import Settings  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def attack(url: str, seconds: float, names: list[str]) -> dict[str, float]:
    counts = {200: 0, 401: 0, 429: 0, "other": 0}
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        i = 0
        while time.monotonic() < deadline:
            name = names[i % len(names)]
            i += 1
            resp = await client.post("/api/auth/login", json={"username": name, "password": f"guess-{i}-wrong"})
            counts[resp.status_code if resp.status_code in counts else "other"] += 1
    elapsed = time.monotonic() - started
    return {"requests/s": sum(counts.values()) / elapsed, "checked guesses/s": counts[401] / elapsed,
            "free refusals/s (429)": counts[429] / elapsed, "checked guesses": counts[401],
            "successes": counts[200], "other": counts["other"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp), port=free_port(), secret_key=secrets.token_urlsafe(32),
                            admin_password=secrets.token_urlsafe(18), s3_secret_key="unused",
                            s3_endpoint=f"127.0.0.1:{free_port()}", log_level="WARNING")
        server = uvicorn.Server(server_config(settings, create_app(settings), log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{settings.port}"
        deadline = time.monotonic() + 60
        while not listening(settings.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        runs = {
            "one account, one address": asyncio.run(attack(url, args.seconds, ["admin"])),
            "500 account names, one address": asyncio.run(
                attack(url, args.seconds, [f"user{n}" for n in range(500)])),
        }
        server.should_exit = True
        thread.join(30)
    keys = list(next(iter(runs.values())))
    print(f"sign-in under attack, {args.seconds:.0f} s per run (throttle defaults: "
          f"{settings.login_free_failures_per_account} free failures per account, "
          f"{settings.login_free_failures_per_address} per address, back-off from "
          f"{settings.login_backoff_base_seconds:.0f} s doubling to {settings.login_backoff_max_seconds:.0f} s)")
    print(f"{'':34}" + "".join(f"{k:>24}" for k in keys))
    for name, figures in runs.items():
        print(f"{name:34}" + "".join(f"{figures[k]:>24.2f}" for k in keys))


if __name__ == "__main__":
    main()
