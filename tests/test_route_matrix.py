"""Every route declares what it needs, and every role gets exactly what the table gives it.

Generated from ``app.routes``: a route that declares nothing (no capability,
not ``signed_in``, not ``public``), a session route without the audited
``session_access`` dependency, or a route missing from ``EXPECTED`` fails
here, so a new route cannot forget. The matrix then asks every route as every
role (and anonymously, and as a role this build does not know) through the
in-process app and checks each cell against ``ROLE_CAPABILITIES``: allowed ->
neither 401 nor 403; not allowed -> 403. Fast: a real SQLite database, the
object store on a closed port (no cell needs it to decide 401/403).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import Mount, Route

from gui_recorder.db import Database, User
from gui_recorder.gateway import accounts, connections
from gui_recorder.sessions import rows
from gui_recorder.gateway.app import create_app
from gui_recorder.settings import Settings
from gui_recorder.stack.process import free_port
from gui_recorder.vocabulary import ROLES, Capability, capabilities_of
from support.inprocess import sign_in_all

C = Capability
PUBLIC, SIGNED_IN = "public", "signed in"
SESSION = "/api/sessions/{session_id}"
CONN = "/api/admin/connections"
ADMIN = "/api/admin"

# The table this build promises: (method, path) -> what the route needs.
EXPECTED: dict[tuple[str, str], Capability | str] = {
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/api/vocabulary"): PUBLIC,
    ("GET", "/api/health/details"): C.OPS_READ,
    ("GET", "/docs"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/logout"): PUBLIC,
    ("POST", "/api/auth/mfa"): PUBLIC,
    ("GET", "/api/auth/providers"): PUBLIC,
    ("GET", "/api/auth/oidc/login"): PUBLIC,
    ("GET", "/api/auth/oidc/callback"): PUBLIC,
    ("DELETE", "/api/admin/users/{username}/mfa"): C.USER_ADMIN,
    ("POST", "/api/auth/mfa/recovery-codes"): SIGNED_IN,
    ("GET", "/api/auth/me"): SIGNED_IN,
    ("WEBSOCKET", "/api/tunnel"): PUBLIC,
    ("WEBSOCKET", "/api/watch"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/connections"): C.CONNECTION_USE,
    ("POST", "/api/connections/{connection_id}/tunnel-token"): C.CONNECTION_USE,
    ("GET", CONN): C.CONNECTION_ADMIN,
    ("POST", CONN): C.CONNECTION_ADMIN,
    ("GET", CONN + "/{connection_id}"): C.CONNECTION_ADMIN,
    ("PUT", CONN + "/{connection_id}"): C.CONNECTION_ADMIN,
    ("DELETE", CONN + "/{connection_id}"): C.CONNECTION_ADMIN,
    ("GET", "/api/sessions"): C.SESSION_VIEW_OWN,
    ("GET", SESSION): C.SESSION_VIEW_OWN,
    ("DELETE", SESSION): C.SESSION_DELETE,
    ("GET", SESSION + "/recording"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/video-info"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/video"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/thumbnails"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/thumbnails/sprite.jpg"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/poster"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/text"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/export"): C.EXPORT,
    ("POST", SESSION + "/review"): C.SESSION_REVIEW,
    ("POST", SESSION + "/watch-token"): C.SESSION_WATCH,
    ("POST", SESSION + "/terminate"): C.SESSION_TERMINATE,
    ("PUT", SESSION + "/legal-hold"): C.LEGAL_HOLD,
    ("GET", "/api/search"): C.SEARCH,
    ("GET", "/api/audit"): C.AUDIT_READ,
    ("GET", "/api/audit/export"): C.AUDIT_READ,
    ("GET", "/api/ops/storage"): C.OPS_READ,
    # The admin console (issue 12): users and groups, grants, test-connect, runtime settings.
    ("GET", ADMIN + "/users"): C.USER_ADMIN,
    ("POST", ADMIN + "/users"): C.USER_ADMIN,
    ("GET", ADMIN + "/users/{username}"): C.USER_ADMIN,
    ("PUT", ADMIN + "/users/{username}/role"): C.USER_ADMIN,
    ("PUT", ADMIN + "/users/{username}/password"): C.USER_ADMIN,
    ("PUT", ADMIN + "/users/{username}/groups"): C.USER_ADMIN,
    ("PUT", ADMIN + "/users/{username}/scope"): C.USER_ADMIN,
    ("POST", ADMIN + "/users/{username}/disable"): C.USER_ADMIN,
    ("POST", ADMIN + "/users/{username}/enable"): C.USER_ADMIN,
    ("DELETE", ADMIN + "/users/{username}"): C.USER_ADMIN,
    ("GET", ADMIN + "/groups"): C.USER_ADMIN,
    ("POST", ADMIN + "/groups"): C.USER_ADMIN,
    ("PUT", ADMIN + "/groups/{name}"): C.USER_ADMIN,
    ("DELETE", ADMIN + "/groups/{name}"): C.USER_ADMIN,
    ("GET", ADMIN + "/grants"): C.CONNECTION_ADMIN,
    ("POST", ADMIN + "/grants"): C.CONNECTION_ADMIN,
    ("DELETE", ADMIN + "/grants/{grant_id}"): C.CONNECTION_ADMIN,
    ("POST", CONN + "/{connection_id}/test"): C.CONNECTION_ADMIN,
    ("GET", ADMIN + "/settings"): C.OPS_READ,
    ("GET", "/api/ops/audit-sinks"): C.OPS_READ,
    ("GET", "/api/admin/policies"): C.POLICY_ADMIN,
    ("POST", "/api/admin/policies"): C.POLICY_ADMIN,
    ("GET", "/api/admin/policies/presets"): C.POLICY_ADMIN,
    ("GET", "/api/admin/policies/{policy_id}"): C.POLICY_ADMIN,
    ("PUT", "/api/admin/policies/{policy_id}"): C.POLICY_ADMIN,
    ("DELETE", "/api/admin/policies/{policy_id}"): C.POLICY_ADMIN,
    ("GET", "/api/alerts"): C.ALERT_READ,
    ("GET", "/api/alerts/counts"): C.ALERT_READ,
    ("GET", "/api/ops/guardrails"): C.OPS_READ,
    ("POST", "/api/connections/{connection_id}/access-requests"): C.CONNECTION_USE,
    ("GET", "/api/access-requests"): C.CONNECTION_USE,
    ("GET", "/api/admin/access-requests"): C.ACCESS_APPROVE,
    ("GET", "/api/connections/{connection_id}/consent"): C.CONNECTION_USE,
    ("GET", SESSION + "/consent"): C.SESSION_VIEW_ALL,
    ("GET", SESSION + "/alerts"): C.SESSION_VIEW_ALL,
    ("POST", "/api/admin/access-requests/{request_id}/decision"): C.ACCESS_APPROVE,
    ("POST", "/api/alerts/{alert_id}/ack"): C.ALERT_ACK,
    ("GET", "/api/ops/capacity-plan"): C.OPS_READ,
}
# Read routes that serve whole copies or every query: recorded on every request, never folded.
NEVER_FOLDED = {SESSION + "/recording", SESSION + "/export", "/api/search"}
USERS = (*ROLES, "ghost")  # "ghost": a role from a newer build, unknown here: it has no capabilities
CONNECTION = connections.ConnectionIn(id="matrix", name="Matrix", protocol="vnc", host="10.9.9.9", port=5900,
                                   allowed_roles=list(ROLES))


def _settings(var_dir, **extra) -> Settings:
    return Settings(var_dir=var_dir, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused",
                    s3_endpoint=f"127.0.0.1:{free_port()}", **extra)


def _calls(dependant) -> list:
    found = []
    for dep in dependant.dependencies:
        found.append(dep.call)
        found.extend(_calls(dep))
    return found


def _routes(app) -> list[tuple[str, str, object]]:
    """(method, path, calls) of every route the app answers; documentation routes and the static mount apart."""
    out = []
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    for rc in iter_route_contexts(app.routes):
        original = rc.original_route
        if isinstance(original, Mount):
            assert rc.path in ("", "/"), f"an unexpected mount at {rc.path}"  # the web pages: public files
            continue
        if isinstance(original, APIWebSocketRoute):
            out.append(("WEBSOCKET", rc.path, _calls(rc.dependant)))
            continue
        if not isinstance(original, APIRoute):
            # FastAPI's own documentation routes; any other plain route would escape the declarations.
            assert isinstance(original, Route) and rc.path in docs, f"an undeclarable route {rc.path}"
            continue
        for method in sorted(rc.methods):
            out.append((method, rc.path, _calls(rc.dependant)))
    return out


def declared(calls: list) -> Capability | str:
    """What a route's dependencies say it needs; exactly one kind of declaration is allowed."""
    from gui_recorder.gateway.auth import signed_in

    capabilities = {c.capability for c in calls if hasattr(c, "capability")}
    kinds = [bool(capabilities), any(hasattr(c, "public_reason") for c in calls), signed_in in calls]
    assert sum(kinds) == 1, f"declares {capabilities or ''} public={kinds[1]} signed_in={kinds[2]}"
    if capabilities:
        assert len(capabilities) == 1, f"needs several capabilities {capabilities}"
        return capabilities.pop()
    return PUBLIC if kinds[1] else SIGNED_IN


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory):
    return _routes(create_app(_settings(tmp_path_factory.mktemp("routes"))))


def test_every_route_declares_what_it_needs_and_is_in_the_table(app_routes):
    seen = {}
    for method, path, calls in app_routes:
        try:
            seen[(method, path)] = declared(calls)
        except AssertionError as exc:
            pytest.fail(f"{method} {path}: {exc}")
    missing = set(seen) - set(EXPECTED)
    assert not missing, f"routes not in the table (add them with the capability they need): {sorted(missing)}"
    assert not set(EXPECTED) - set(seen), f"the table names routes that do not exist: {set(EXPECTED) - set(seen)}"
    wrong = {k: (v, EXPECTED[k]) for k, v in seen.items() if v != EXPECTED[k]}
    assert not wrong, f"declared vs expected: {wrong}"


def test_every_route_serving_session_data_takes_the_audited_dependency(app_routes):
    checked = 0
    for method, path, calls in app_routes:
        if "{session_id}" not in path and path != "/api/search":
            continue
        specs = [c.session_access for c in calls if hasattr(c, "session_access")]
        assert len(specs) == 1, f"{method} {path} must take exactly one gateway.access dependency, has {specs}"
        spec = specs[0]
        assert spec.capability == EXPECTED[(method, path)], (method, path, spec)
        if method == "GET":
            assert spec.audit, f"{method} {path} serves session data but its dependency records no event"
            assert spec.collapse is (path not in NEVER_FOLDED), (method, path, spec)
        else:
            assert spec.audit is None, f"{method} {path} is an action: it records its own event, with details"
        checked += 1
    assert checked == sum(1 for _, p in EXPECTED if "{session_id}" in p or p == "/api/search")


def test_the_role_table_is_what_the_pages_and_routes_assume():
    # Vendors and operators see their own rows only; oversight is the auditors' and the admins'.
    assert Capability.SESSION_VIEW_ALL not in capabilities_of("vendor") | capabilities_of("operator")
    assert capabilities_of("admin") == frozenset(Capability)
    assert capabilities_of("ghost") == frozenset()
    for role in ROLES:
        assert Capability.SESSION_VIEW_OWN in capabilities_of(role)


# -- the matrix: every route x every role, through the app ------------------------------------------

@pytest.fixture(scope="module")
async def matrix(tmp_path_factory):
    passwords = {name: secrets.token_urlsafe(18) for name in USERS}
    settings = _settings(tmp_path_factory.mktemp("matrix"), admin_password=passwords["admin"])
    clock_now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    app = create_app(settings, lambda: clock_now)
    async with app.router.lifespan_context(app):
        db: Database = app.state.services.db
        for name in USERS:
            accounts.ensure_user(db, name, passwords[name], "vendor" if name == "ghost" else name)
        with db.session() as s:
            from sqlalchemy import select

            s.scalar(select(User).where(User.username == "ghost")).role = "ghost"
            vendor = s.scalar(select(User).where(User.username == "vendor"))
        connection = connections.ensure_connection(db, settings, CONNECTION)
        session = rows.create_session(db, vendor, connection, "203.0.113.9", None)
        rows.end_session(db, session.id, "ended", "user disconnected", 10, 10, None)
        transport = httpx.ASGITransport(app=app, client=("192.0.2.20", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            tokens = await sign_in_all(client, passwords)  # each cell names its user by bearer token only
            yield app, client, tokens, session.id


def _console_targets(app) -> int:
    """What the admin console's cells act on, made afresh for each cell (an admin cell deletes them)."""
    from gui_recorder.errors import ConflictError
    from gui_recorder.gateway import grants, groups, users

    db = app.state.services.db
    try:
        users.create_user(db, "matrix-target", "vendor", password=secrets.token_urlsafe(18))
    except ConflictError:
        users.set_disabled(db, "matrix-target", False)
    try:
        groups.save_group(db, groups.GroupIn(name="matrix-group"), create=True)
    except ConflictError:
        pass
    try:
        return grants.add_grant(db, grants.GrantIn(group="matrix-group", tag="matrix"), None).id
    except ConflictError:
        return next(g.id for g in grants.list_grants(db) if g.group == "matrix-group" and g.tag == "matrix")


@pytest.mark.parametrize("method,path", [k for k, v in EXPECTED.items() if v != PUBLIC],
                         ids=[f"{m} {p}" for (m, p), v in EXPECTED.items() if v != PUBLIC])
async def test_matrix(matrix, method, path):
    app, client, tokens, session_id = matrix
    # A cell may have deleted the connection (admin DELETE): every cell starts from the same state.
    connections.ensure_connection(app.state.services.db, app.state.services.settings, CONNECTION)
    grant_id = _console_targets(app)
    url = (path.replace("{session_id}", session_id).replace("{connection_id}", CONNECTION.id)
           .replace("{username}", "matrix-target").replace("{name}", "matrix-group")
           .replace("{grant_id}", str(grant_id)).replace("{policy_id}", "1").replace("{alert_id}", "1")
           .replace("{request_id}", "1"))
    need = EXPECTED[(method, path)]
    anonymous = await client.request(method, url)
    assert anonymous.status_code == 401, (method, path, anonymous.text)
    cells = {}
    # The admin last: its requests are the ones that may change something.
    for name in sorted(USERS, key=lambda n: n == "admin"):
        resp = await client.request(method, url, headers={"Authorization": f"Bearer {tokens[name]}"})
        allowed = need == SIGNED_IN or need in capabilities_of(name)  # each user is named after its role
        cells[name] = resp.status_code
        if allowed:
            assert resp.status_code not in (401, 403), (method, path, name, resp.text)
        else:
            assert resp.status_code == 403, (method, path, name, resp.text)
            body = resp.json()
            assert body["error"] == "ForbiddenError" and repr(need.value) in body["detail"], body
    assert any(code not in (401, 403) for code in cells.values()), "somebody may use every route"


async def test_me_returns_the_capabilities_the_pages_build_on(matrix):
    _, client, tokens, _ = matrix
    for name in USERS:
        me = (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens[name]}"})).json()
        assert me["capabilities"] == sorted(c.value for c in capabilities_of(me["role"])), me
    ghost = (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['ghost']}"})).json()
    assert ghost == {"username": "ghost", "role": "ghost", "capabilities": []}


async def test_vendors_see_their_own_rows_and_nobody_elses(matrix):
    app, client, tokens, session_id = matrix
    db = app.state.services.db
    from sqlalchemy import select

    with db.session() as s:
        operator = s.scalar(select(User).where(User.username == "operator"))
    other = rows.create_session(db, operator, connections.get_connection(db, CONNECTION.id), None, None)

    async def listed(name: str) -> set[str]:
        resp = await client.get("/api/sessions", headers={"Authorization": f"Bearer {tokens[name]}"})
        return {r["id"] for r in resp.json()}

    assert await listed("vendor") == {session_id}
    assert await listed("operator") == {other.id}
    assert {session_id, other.id} <= await listed("auditor")
    hidden = await client.get(f"/api/sessions/{other.id}", headers={"Authorization": f"Bearer {tokens['vendor']}"})
    assert hidden.status_code == 404, "another user's session does not exist for a vendor"
    own = await client.get(f"/api/sessions/{session_id}", headers={"Authorization": f"Bearer {tokens['vendor']}"})
    assert own.status_code == 200 and own.json()["user"] == "vendor"
    for status in ("interrupted", "refused"):  # the statuses every session can end in are filters too
        resp = await client.get("/api/sessions", params={"status": status},
                                headers={"Authorization": f"Bearer {tokens['auditor']}"})
        assert resp.status_code == 200, resp.text


async def test_view_window_folds_repeats_and_never_serves_a_read_unrecorded():
    import asyncio

    from gui_recorder.errors import DatabaseError
    from gui_recorder.gateway.view_window import ViewWindow

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    written: list[str] = []
    gate = asyncio.Event()

    def writer(name: str, fail: bool = False, wait: bool = False):
        async def write() -> None:
            if wait:
                await gate.wait()
            if fail:
                raise DatabaseError("the audit table cannot be written")
            written.append(name)
        return write

    window = ViewWindow(300, limit=2)
    key = ("auditor", "s1", "video.view")
    await window.record_once(key, t0, writer("first"))
    await window.record_once(key, t0 + timedelta(seconds=299), writer("folded"))
    await window.record_once(key, t0 + timedelta(seconds=300), writer("next window"))
    assert written == ["first", "next window"]

    # Range requests in parallel while the first write is still going, and that write fails:
    # the others are not served on its credit, each writes its own event.
    key2 = ("auditor", "s2", "video.view")
    first = asyncio.create_task(window.record_once(key2, t0, writer("failing", fail=True, wait=True)))
    await asyncio.sleep(0)  # the first read is now writing (a scheduling step, not a wait for time)
    others = [asyncio.create_task(window.record_once(key2, t0, writer(f"parallel {n}"))) for n in range(3)]
    await asyncio.sleep(0)
    assert written == ["first", "next window"], "the parallel reads wait for the write in flight"
    gate.set()
    with pytest.raises(DatabaseError):
        await first
    await asyncio.gather(*others)
    assert sorted(written[2:]) == ["parallel 0", "parallel 1", "parallel 2"]

    # Full of live keys: a new key is recorded on every read rather than remembered.
    written.clear()
    third = ("admin", "s3", "video.view")
    for n in range(2):
        await window.record_once(third, t0 + timedelta(seconds=200 + n), writer(f"unremembered {n}"))
    assert written == ["unremembered 0", "unremembered 1"]
    unwindowed = ViewWindow(0)
    for _ in range(2):
        await unwindowed.record_once(key, t0, writer("every time"))
    assert written[-2:] == ["every time", "every time"]
