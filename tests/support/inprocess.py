"""For tests of the gateway app in this process: a clock the test moves, bearer tokens for its users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx


class Clock:
    """The database's "now" (``create_app(settings, clock)``), moved by the test instead of sleeping."""

    def __init__(self, start: datetime = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def sign_in_all(client: httpx.AsyncClient, passwords: dict[str, str]) -> dict[str, str]:
    """A login token per user, through the real sign-in; the cookies it set are dropped, so that each
    request names its user by bearer token only."""
    tokens = {}
    for name, password in passwords.items():
        resp = await client.post("/api/auth/login", json={"username": name, "password": password})
        assert resp.status_code == 200, resp.text
        tokens[name] = resp.json()["token"]
    client.cookies.clear()
    return tokens
