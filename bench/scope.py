"""What an auditor scope costs per request (prints figures side by side).

The in-process gateway on SQLite with ``--connections`` connections (a tenth
tagged ``finance``) and ``--sessions`` sessions spread over them; the same
reads by an unscoped auditor and by one scoped to ``finance``: the sessions
list (200 rows) and one session's row (``session_access``, which asks the
scope once per request). Printed: requests per second and milliseconds per
request for each, and how many rows each sees.

    .venv/bin/python bench/scope.py --connections 500 --sessions 20000 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GUI_RECORDER_PASSWORD_HASH_TIME_COST", "1")  # sign-ins are not what is measured
os.environ.setdefault("GUI_RECORDER_PASSWORD_HASH_MEMORY_KIB", "1024")

import logging  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from gui_recorder.db import Connection, Session, User  # noqa: E402
from gui_recorder.gateway import accounts, users  # noqa: E402
from gui_recorder.gateway.app import create_app  # noqa: E402
from gui_recorder.settings import Settings  # noqa: E402
from gui_recorder.stack.process import free_port  # noqa: E402


def _seed(db, n_connections: int, n_sessions: int) -> str:
    now = db.now()
    with db.session() as s:
        s.execute(insert(Connection), [
            {"id": f"c{i}", "name": f"C{i}", "protocol": "vnc", "host": "10.0.0.1", "port": 5900, "credentials": "",
             "parameters": {}, "allowed_users": [], "allowed_roles": [], "recording_policy": {},
             "created_at": now, "updated_at": now, "tags": ["finance"] if i % 10 == 0 else ["ops"]}
            for i in range(n_connections)])
        vendor = s.scalar(select(User.id).where(User.username == "vendor"))
        s.execute(insert(Session), [
            {"id": f"s{i:08d}", "user_id": vendor, "username": "vendor", "connection_id": f"c{i % n_connections}",
             "connection_name": "C", "protocol": "vnc", "started_at": now, "status": "ended", "recording": {},
             "video": {}} for i in range(n_sessions)])
    return "s00000000"  # on c0: tagged finance, so both auditors see it


async def _rate(client, token: str, url: str, requests: int) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {token}"}
    first = await client.get(url, headers=headers)
    assert first.status_code == 200, first.text
    rows = len(first.json()) if isinstance(first.json(), list) else 1
    started = time.perf_counter()
    for _ in range(requests):
        (await client.get(url, headers=headers)).raise_for_status()
    return requests / (time.perf_counter() - started), rows


async def main(args) -> None:
    logging.getLogger("gui_recorder").setLevel(logging.ERROR)  # the object store is closed on purpose
    with tempfile.TemporaryDirectory() as tmp:
        pw = {name: secrets.token_urlsafe(18) for name in ("admin", "vendor", "auditor", "fin-auditor")}
        settings = Settings(var_dir=Path(tmp), secret_key=secrets.token_urlsafe(32), s3_secret_key="unused",
                            s3_endpoint=f"127.0.0.1:{free_port()}", admin_password=pw["admin"])
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            db = app.state.services.db
            for name in ("vendor", "auditor", "fin-auditor"):
                accounts.ensure_user(db, name, pw[name], "vendor" if name == "vendor" else "auditor")
            users.set_scope(db, "fin-auditor", ["finance"])
            one = _seed(db, args.connections, args.sessions)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                tokens = {}
                for name in ("auditor", "fin-auditor"):
                    resp = await client.post("/api/auth/login", json={"username": name, "password": pw[name]})
                    tokens[name] = resp.json()["token"]
                client.cookies.clear()
                print(f"{args.connections} connections ({args.connections // 10} tagged finance), "
                      f"{args.sessions} sessions, {args.requests} requests each, in process (SQLite)")
                print(f"{'read':28} {'unscoped auditor':>26} {'auditor of finance':>26}")
                for label, url in (("GET /api/sessions (200)", "/api/sessions?limit=200"),
                                   ("GET /api/sessions/{id}", f"/api/sessions/{one}")):
                    cells = []
                    for name in ("auditor", "fin-auditor"):
                        rate, rows = await _rate(client, tokens[name], url, args.requests)
                        cells.append(f"{rate:7.0f}/s {1000 / rate:6.2f} ms {rows:4d} rows")
                    print(f"{label:28} {cells[0]:>26} {cells[1]:>26}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
