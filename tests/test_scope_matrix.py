"""A scoped auditor cannot reach a session outside their tags through ANY route (issue 12, item 2).

Generated from the app's routes, like test_route_matrix.py: every route under
``/api/sessions/{session_id}`` is asked, by every method it answers, for an
out-of-scope session: 404 (it does not exist for them) or 403 (a capability
they lack), never served, and no read event is written for it. Every GET the
auditor may call (lists, search, the text timeline...) is then read for the
out-of-scope session's id, which must appear in no body; the in-scope session
stays reachable, so the scope hides, not breaks. Scope by the account's own
tags and by a group's. Fast: the in-process app on SQLite (the object store on
a closed port: a media read that passes the scope answers 409/503, never 404
"no session").
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from gui_recorder.db import AuditEvent, User
from gui_recorder.gateway import accounts, connections, groups, users
from gui_recorder.gateway.app import create_app
from gui_recorder.index import SessionMeta
from gui_recorder.sessions import rows
from gui_recorder.text import TypedLine
from support.inprocess import sign_in_all
from test_route_matrix import EXPECTED, PUBLIC, _routes, _settings

FINANCE = connections.ConnectionIn(id="ledger", name="Ledger", protocol="vnc", host="10.9.9.1", port=5900,
                                   tags=["finance"], allowed_roles=["vendor"])
OPS = connections.ConnectionIn(id="build-box", name="Build box", protocol="vnc", host="10.9.9.2", port=5900,
                               tags=["ops"], allowed_roles=["vendor"])
SESSION_ROUTES = sorted((m, p) for (m, p) in EXPECTED if "{session_id}" in p)


@pytest.fixture(scope="module")
async def scoped(tmp_path_factory):
    names = ["admin", "vendor", "fin-auditor", "group-auditor", "auditor"]
    passwords = {n: secrets.token_urlsafe(18) for n in names}
    settings = _settings(tmp_path_factory.mktemp("scope"), admin_password=passwords["admin"])
    app = create_app(settings, lambda: datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    async with app.router.lifespan_context(app):
        services = app.state.services
        db = services.db
        for name in names[1:]:
            accounts.ensure_user(db, name, passwords[name], "vendor" if name == "vendor" else "auditor")
        users.set_scope(db, "fin-auditor", ["finance"])  # scoped by its own tags
        groups.save_group(db, groups.GroupIn(name="Finance audit", scope_tags=["finance"],
                                             members=["group-auditor"]), create=True)  # ...by its group's
        with db.session() as s:
            vendor = s.scalar(select(User).where(User.username == "vendor"))
        sessions = {}
        for spec in (FINANCE, OPS):
            conn = connections.ensure_connection(db, settings, spec)
            row = rows.create_session(db, vendor, conn, "203.0.113.7", None)
            rows.end_session(db, row.id, "ended", "user disconnected", 10, 10, None)
            services.search_index.index_session(
                SessionMeta(row.id, "vendor", conn.id, "vnc", row.started_at),
                [TypedLine(f"payroll export {conn.id}", 100, 900)], [])
            sessions[spec.id] = row.id
        transport = httpx.ASGITransport(app=app, client=("192.0.2.30", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            tokens = await sign_in_all(client, passwords)
            yield app, client, tokens, sessions


def _reads_of(app, username: str, session_id: str) -> list[str]:
    with app.state.services.db.session() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.username == username,
                                                              AuditEvent.target == session_id)))


@pytest.mark.parametrize("auditor", ["fin-auditor", "group-auditor"])
@pytest.mark.parametrize("method,path", SESSION_ROUTES, ids=[f"{m} {p}" for m, p in SESSION_ROUTES])
async def test_no_session_route_serves_an_out_of_scope_session(scoped, auditor, method, path):
    app, client, tokens, sessions = scoped
    hidden, visible = sessions["build-box"], sessions["ledger"]
    headers = {"Authorization": f"Bearer {tokens[auditor]}"}
    params = {"reason": "scope test"} if method == "DELETE" else None
    out = await client.request(method, path.replace("{session_id}", hidden), headers=headers, params=params)
    assert out.status_code in (403, 404), (method, path, out.status_code, out.text)
    if out.status_code == 404:
        assert out.json()["detail"] == f"no session {hidden}", out.text  # the same answer as a nonexistent one
    assert _reads_of(app, auditor, hidden) == [], "nothing was read, so nothing is recorded"
    if method != "GET":
        return  # actions on the visible session would change it (terminate, forget): the GETs prove the contrast
    seen = await client.request(method, path.replace("{session_id}", visible), headers=headers)
    assert seen.status_code != 403 and seen.json().get("detail") != f"no session {visible}", (path, seen.text)


@pytest.mark.parametrize("auditor", ["fin-auditor", "group-auditor"])
async def test_no_listing_names_an_out_of_scope_session(scoped, auditor):
    app, client, tokens, sessions = scoped
    hidden, visible = sessions["build-box"], sessions["ledger"]
    headers = {"Authorization": f"Bearer {tokens[auditor]}"}
    asked = 0
    for method, path, _ in _routes(app):
        if method != "GET" or EXPECTED.get((method, path)) in (PUBLIC, None) or "{" in path:
            continue
        params = {"q": "payroll"} if path == "/api/search" else None
        resp = await client.get(path, headers=headers, params=params)
        assert hidden not in resp.text, f"{path} names the out-of-scope session"
        asked += 1
    assert asked >= 5
    listed = {r["id"] for r in (await client.get("/api/sessions", headers=headers)).json()}
    assert listed == {visible}
    found = (await client.get("/api/search", headers=headers, params={"q": "payroll"})).json()
    assert {r["session_id"] for r in found["results"]} == {visible}
    # Not a filter the searcher can widen: asking for the other connection by name finds nothing.
    wider = await client.get("/api/search", headers=headers, params={"q": "payroll", "connection": "build-box"})
    assert wider.json()["count"] == 0


async def test_an_unscoped_auditor_still_oversees_everything(scoped):
    app, client, tokens, sessions = scoped
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    shown = {u["username"]: u["oversees"] for u in (await client.get("/api/admin/users", headers=admin)).json()}
    assert shown["fin-auditor"] == shown["group-auditor"] == ["finance"] and shown["auditor"] == []
    headers = {"Authorization": f"Bearer {tokens['auditor']}"}
    listed = {r["id"] for r in (await client.get("/api/sessions", headers=headers)).json()}
    assert set(sessions.values()) <= listed
    found = (await client.get("/api/search", headers=headers, params={"q": "payroll"})).json()
    assert {r["session_id"] for r in found["results"]} == set(sessions.values())
    for session_id in sessions.values():
        assert (await client.get(f"/api/sessions/{session_id}", headers=headers)).status_code == 200


async def test_re_tagging_a_connection_moves_its_sessions_into_scope(scoped):
    app, client, tokens, sessions = scoped
    services = app.state.services
    headers = {"Authorization": f"Bearer {tokens['fin-auditor']}"}
    url = f"/api/sessions/{sessions['build-box']}"
    assert (await client.get(url, headers=headers)).status_code == 404
    connections.ensure_connection(services.db, services.settings, OPS.model_copy(update={"tags": ["ops", "finance"]}))
    try:
        assert (await client.get(url, headers=headers)).status_code == 200
    finally:
        connections.ensure_connection(services.db, services.settings, OPS)
    assert (await client.get(url, headers=headers)).status_code == 404
