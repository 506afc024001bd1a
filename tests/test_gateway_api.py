"""The gateway's HTTP API: accounts, the connection registry, tokens, sessions, audit.

Fast: the real application (``create_app``) with a real SQLite database in a
temporary directory, driven in-process through httpx's ASGI transport; the
object store is not needed by these routes and points at a closed port. Time
is an injected clock, never a sleep. The tunnel itself is tested against real
guacd in ``test_gateway_security.py``.
"""

from __future__ import annotations

import json
import secrets
import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gui_recorder.db import Database, Session, User
from gui_recorder.errors import AuthError, ConfigError, ForbiddenError
from gui_recorder.gateway import accounts, connections, tokens
from gui_recorder.sessions import rows
from gui_recorder.gateway.app import create_app
from gui_recorder.gateway.filter import ClientPolicy
from gui_recorder.settings import Settings
from gui_recorder.stack.process import free_port
from support.inprocess import Clock

ROLES = ("admin", "operator", "vendor", "auditor")
TARGET_PASSWORD = "tgt-" + secrets.token_hex(12)  # must never leave the gateway


@dataclass
class Gateway:
    app: object
    settings: Settings
    clock: Clock
    passwords: dict[str, str]
    clients: list = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.app.state.services.db

    def client(self, addr: str = "192.0.2.10") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(addr, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway.test")
        self.clients.append(client)
        return client

    async def login(self, username: str) -> str:
        resp = await self.client().post("/api/auth/login",
                                        json={"username": username, "password": self.passwords[username]})
        assert resp.status_code == 200, resp.text
        return resp.json()["token"]

    async def api(self, username: str) -> httpx.AsyncClient:
        """A client signed in as ``username`` (one sign-in per user per test: argon2 is slow on purpose)."""
        if username not in self._tokens:
            self._tokens[username] = await self.login(username)
        client = self.client()
        client.headers["Authorization"] = f"Bearer {self._tokens[username]}"
        return client


def _user(db: Database, username: str) -> User:
    from sqlalchemy import select

    with db.session() as s:
        return s.scalar(select(User).where(User.username == username))


def make_settings(var_dir: Path, **extra) -> Settings:
    return Settings(var_dir=var_dir, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused",
                    s3_endpoint=f"127.0.0.1:{free_port()}", **extra)


@asynccontextmanager
async def running(settings: Settings, clock: Clock):
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Settings, dict[str, str]]:
    """Accounts and connections, made once: argon2 is slow on purpose, so each test copies this database."""
    # Never all digits after the role (the policy strips trailing digits, and "admin" is a common password).
    passwords = {role: f"{role}-{secrets.token_hex(6)}-pw" for role in ROLES}
    passwords["vendor2"] = "vendor2-" + secrets.token_hex(6) + "-pw"
    settings = make_settings(tmp_path_factory.mktemp("template"), admin_password=passwords["admin"])
    db = Database(settings)
    try:
        db.create_all()
        for role in ROLES:
            accounts.ensure_user(db, role, passwords[role], role)
        accounts.ensure_user(db, "vendor2", passwords["vendor2"], "vendor")
        for spec in (
            connections.ConnectionIn(id="win-rdp", name="Windows", protocol="rdp", host="10.0.0.5", port=3389,
                                  username="svc", password=TARGET_PASSWORD, domain="CORP",
                                  parameters={"security": "nla", "ignore-cert": "true"},
                                  allowed_roles=["operator"], allowed_users=["vendor"]),
            connections.ConnectionIn(id="lin-vnc", name="Linux", protocol="vnc", host="10.0.0.6", port=5900,
                                  password=TARGET_PASSWORD, allowed_roles=["operator"],
                                  recording_policy={"allow_clipboard": False, "retention_days": 30}),
        ):
            connections.ensure_connection(db, settings, spec)
    finally:
        db.dispose()  # the last connection closing folds the WAL into the file
    return settings, passwords


@pytest.fixture
async def gw(template, tmp_path):
    base, passwords = template
    for part in base.var_dir.glob("gui-recorder.db*"):
        shutil.copyfile(part, tmp_path / part.name)
    settings = base.model_copy(update={"var_dir": tmp_path})
    clock = Clock()
    async with running(settings, clock) as app:
        gateway = Gateway(app, settings, clock, passwords)
        try:
            yield gateway
        finally:
            for client in gateway.clients:
                await client.aclose()


async def audit_events(gw: Gateway, action: str) -> list[dict]:
    admin = await gw.api("admin")
    return (await admin.get("/api/audit", params={"action": action})).raise_for_status().json()


# -- sign-in ---------------------------------------------------------------------------

async def test_login_ok_sets_a_strict_httponly_cookie_and_works_as_bearer(gw):
    browser = gw.client()
    resp = await browser.post("/api/auth/login", json={"username": "vendor", "password": gw.passwords["vendor"]})
    assert resp.status_code == 200
    body = resp.json()
    assert body["username"] == "vendor" and body["role"] == "vendor" and len(body["token"]) >= 32
    cookie = resp.headers["set-cookie"].lower()
    assert f"{tokens.COOKIE_NAME}=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    vendor_me = {"username": "vendor", "role": "vendor", "capabilities": ["connection.use", "session.view_own"]}
    assert (await browser.get("/api/auth/me")).json() == vendor_me  # cookie
    bearer = await gw.client().get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert bearer.json() == vendor_me
    anonymous = await gw.client().get("/api/auth/me")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "AuthError"
    forged = await gw.client().get("/api/auth/me", headers={"Authorization": "Bearer " + "A" * 43})
    assert forged.status_code == 401
    assert (await audit_events(gw, "auth.login"))[-1]["client_addr"] == "192.0.2.10"


async def test_bad_password_and_unknown_user_fail_alike_and_are_audited(gw):
    client = gw.client("198.51.100.7")
    bad = await client.post("/api/auth/login", json={"username": "vendor", "password": "wrong"})
    unknown = await client.post("/api/auth/login", json={"username": "nobody", "password": "wrong"})
    assert bad.status_code == unknown.status_code == 401
    assert bad.json() == unknown.json() == {"error": "AuthError", "detail": "incorrect username or password"}
    assert "set-cookie" not in bad.headers
    failed = await audit_events(gw, "auth.login_failed")
    assert {(e["username"], e["client_addr"]) for e in failed} == {("vendor", "198.51.100.7"),
                                                                    ("nobody", "198.51.100.7")}


async def test_login_refuses_oversized_and_malformed_input(gw):
    client = gw.client()
    huge = await client.post("/api/auth/login", json={"username": "vendor", "password": "x" * 1_000_000})
    assert huge.status_code == 422
    long_name = await client.post("/api/auth/login", json={"username": "u" * 65, "password": "x"})
    assert long_name.status_code == 422
    not_json = await client.post("/api/auth/login", content=b"\xff\x00{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert (await client.post("/api/auth/login", json=["vendor"])).status_code == 422


async def test_logout_revokes_and_tokens_expire_on_the_clock(gw):
    token = await gw.login("operator")
    headers = {"Authorization": f"Bearer {token}"}
    client = gw.client()
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401

    token = await gw.login("operator")
    headers = {"Authorization": f"Bearer {token}"}
    gw.clock.advance(gw.settings.token_ttl_seconds - 1)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    gw.clock.advance(1)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_disabled_user_cannot_sign_in_nor_use_an_old_token(gw):
    token = await gw.login("vendor2")
    with gw.db.session() as s:
        s.get(User, _user(gw.db, "vendor2").id).disabled = True
    client = gw.client()
    assert (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    again = await client.post("/api/auth/login", json={"username": "vendor2", "password": gw.passwords["vendor2"]})
    assert again.status_code == 401


# -- accounts ----------------------------------------------------------------------------

async def test_ensure_user_is_idempotent_and_updates_the_password(gw):
    first = accounts.ensure_user(gw.db, "carol", "one-long-passphrase", "auditor")
    second = accounts.ensure_user(gw.db, "carol", "one-long-passphrase", "auditor")
    assert first.id == second.id and first.password_hash == second.password_hash
    assert second.password_hash.startswith("$argon2")
    third = accounts.ensure_user(gw.db, "carol", "two-long-passphrase", "auditor")
    assert third.id == first.id and third.password_hash != first.password_hash
    with pytest.raises(AuthError):
        accounts.authenticate(gw.db, "carol", "one-long-passphrase")
    assert accounts.authenticate(gw.db, "carol", "two-long-passphrase").role == "auditor"
    with pytest.raises(ConfigError):
        accounts.ensure_user(gw.db, "dave", "pw", "superuser")


async def test_first_run_seeds_one_admin_and_needs_its_password(tmp_path):
    clock = Clock()
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD"):
        async with running(make_settings(tmp_path / "a"), clock):
            pass
    settings = make_settings(tmp_path / "b", admin_username="root", admin_password="first-admin-pass")
    async with running(settings, clock) as app:
        assert accounts.authenticate(app.state.services.db, "root", "first-admin-pass").role == "admin"
    # A restart with another configured password does not reset an existing admin.
    settings = settings.model_copy(update={"admin_password": settings.admin_password.__class__("second-admin-pass")})
    async with running(settings, clock) as app:
        assert accounts.authenticate(app.state.services.db, "root", "first-admin-pass").role == "admin"
        with pytest.raises(AuthError):
            accounts.authenticate(app.state.services.db, "root", "second-admin-pass")


# -- roles and grants ---------------------------------------------------------------------

async def test_vendor_is_refused_every_admin_api(gw):
    vendor = await gw.api("vendor")
    spec = {"id": "x", "name": "x", "protocol": "vnc", "host": "h", "port": 1}
    for method, path, body in (("GET", "/api/admin/connections", None), ("POST", "/api/admin/connections", spec),
                               ("GET", "/api/admin/connections/win-rdp", None),
                               ("PUT", "/api/admin/connections/win-rdp", {**spec, "id": "win-rdp"}),
                               ("DELETE", "/api/admin/connections/win-rdp", None),
                               ("GET", "/api/audit", None), ("GET", "/api/audit/export", None)):
        resp = await vendor.request(method, path, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["error"] == "ForbiddenError"
    admin = await gw.api("admin")
    assert (await admin.get("/api/admin/connections/win-rdp")).status_code == 200, "nothing was deleted"


async def test_each_user_sees_and_opens_only_granted_connections(gw):
    listing = {}
    for username in ("admin", "operator", "vendor", "vendor2", "auditor"):
        api = await gw.api(username)
        listing[username] = {c["id"] for c in (await api.get("/api/connections")).json()}
    assert listing == {"admin": {"win-rdp", "lin-vnc"}, "operator": {"win-rdp", "lin-vnc"},
                       "vendor": {"win-rdp"}, "vendor2": set(), "auditor": set()}

    vendor = await gw.api("vendor")
    assert (await vendor.get("/api/connections")).json() == [{"id": "win-rdp", "name": "Windows", "protocol": "rdp",
                                                               "requires_approval": False, "access_until": None}]
    ok = await vendor.post("/api/connections/win-rdp/tunnel-token")
    assert ok.status_code == 200 and ok.json()["expires_in"] == gw.settings.tunnel_token_ttl_seconds
    denied = await vendor.post("/api/connections/lin-vnc/tunnel-token")
    assert denied.status_code == 403 and denied.json()["error"] == "ForbiddenError"
    # "No such connection" and "not yours" answer alike: ids that exist are not revealed.
    missing = await vendor.post("/api/connections/nope/tunnel-token")
    assert missing.status_code == 403 and missing.json() == denied.json() | {
        "detail": denied.json()["detail"].replace("'lin-vnc'", "'nope'")}
    assert [e["target"] for e in await audit_events(gw, "connection.denied")] == ["nope", "lin-vnc"]
    assert [(e["username"], e["target"]) for e in await audit_events(gw, "connection.token")] == [
        ("vendor", "win-rdp")]


# -- the registry: credentials write-only and sealed ----------------------------------------

async def test_credentials_are_never_returned_and_are_encrypted_at_rest(gw):
    admin = await gw.api("admin")
    spec = {"id": "db-host", "name": "DB", "protocol": "rdp", "host": "db.example.internal", "port": 3389,
            "username": "dba", "password": TARGET_PASSWORD, "allowed_users": ["vendor"]}
    texts = []
    created = await admin.post("/api/admin/connections", json=spec)
    assert created.status_code == 201
    texts.append(created.text)
    for path in ("/api/admin/connections", "/api/admin/connections/db-host", "/api/admin/connections/win-rdp",
                 "/api/connections", "/api/audit", "/api/audit/export", "/openapi.json"):
        resp = await admin.get(path)
        assert resp.status_code == 200, path
        texts.append(resp.text)
    texts.append((await admin.put("/api/admin/connections/db-host", json={**spec, "name": "DB 2"})).text)
    vendor = await gw.api("vendor")
    texts.append((await vendor.get("/api/connections")).text)
    assert all(TARGET_PASSWORD not in t for t in texts)
    view = created.json()
    assert view["has_password"] is view["has_username"] is True and "password" not in view
    assert "username" not in view and view["secret_parameters"] == []

    db_file = gw.settings.var_dir / "gui-recorder.db"
    raw = b"".join(p.read_bytes() for p in gw.settings.var_dir.glob("gui-recorder.db*"))
    assert db_file.exists() and b"db.example.internal" in raw, "this is the database file"
    assert TARGET_PASSWORD.encode() not in raw and b"CORP" not in raw

    # Only the gateway, with the right key, gets them back: for guacd.
    connection = connections.get_connection(gw.db, "win-rdp")
    definition = connections.definition_for(connection, gw.settings, ClientPolicy())
    assert definition.protocol == "rdp"
    assert {k: definition.parameters[k] for k in ("hostname", "port", "username", "password", "domain", "security")} == {
        "hostname": "10.0.0.5", "port": "3389", "username": "svc", "password": TARGET_PASSWORD, "domain": "CORP",
        "security": "nla"}
    other_key = gw.settings.model_copy(update={"secret_key": gw.settings.secret_key.__class__("another")})
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        connections.definition_for(connection, other_key, ClientPolicy())


async def test_policy_flags_reach_guacd_parameters(gw):
    connection = connections.get_connection(gw.db, "lin-vnc")
    assert connection.recording_policy == {"fail_closed": True, "allow_clipboard": False,
                                           "allow_file_transfer": False, "retention_days": 30,
                                           "keep_transferred_files": False, "ocr_languages": None,
                                           "require_approval": False, "consent_text": None, "four_eyes": False}
    policy = ClientPolicy.from_recording_policy(connection.recording_policy)
    params = connections.definition_for(connection, gw.settings, policy).parameters
    assert params["disable-copy"] == params["disable-paste"] == "true"
    assert params["enable-drive"] == "false" and "username" not in params


async def test_admin_create_update_delete_with_audit(gw):
    admin = await gw.api("admin")
    spec = {"id": "new-vnc", "name": "New", "protocol": "vnc", "host": "10.1.1.1", "port": 5901,
            "password": "first-secret", "allowed_roles": ["vendor"]}
    assert (await admin.post("/api/admin/connections", json=spec)).status_code == 201
    again = await admin.post("/api/admin/connections", json=spec)
    assert again.status_code == 409 and again.json()["error"] == "ConflictError"

    # The admin cannot read the password back, so an edit without it keeps it (same endpoint).
    edit = {k: v for k, v in spec.items() if k != "password"} | {"name": "Renamed"}
    updated = await admin.put("/api/admin/connections/new-vnc", json=edit)
    assert updated.status_code == 200 and updated.json()["name"] == "Renamed"
    assert updated.json()["has_password"] is True
    params = connections.definition_for(connections.get_connection(gw.db, "new-vnc"), gw.settings, ClientPolicy()).parameters
    assert params["password"] == "first-secret" and params["port"] == "5901"
    # Another port is another endpoint: the stored password does not follow it (test_gateway_security).
    edit["port"] = 5902
    assert (await admin.put("/api/admin/connections/new-vnc", json=edit)).json()["has_password"] is False
    cleared = await admin.put("/api/admin/connections/new-vnc", json={**edit, "password": ""})
    assert cleared.json()["has_password"] is False

    mismatch = await admin.put("/api/admin/connections/new-vnc", json={**edit, "id": "other"})
    assert mismatch.status_code == 409
    assert (await admin.put("/api/admin/connections/ghost", json={**edit, "id": "ghost"})).status_code == 404
    assert (await admin.delete("/api/admin/connections/new-vnc")).status_code == 204
    gone = await admin.get("/api/admin/connections/new-vnc")
    assert gone.status_code == 404 and gone.json()["error"] == "NotFoundError"
    assert (await admin.delete("/api/admin/connections/new-vnc")).status_code == 404
    actions = [e["action"] for e in (await admin.get("/api/audit")).json() if e["target"] == "new-vnc"]
    assert actions == ["connection.delete", "connection.update", "connection.update", "connection.update",
                       "connection.create"]


@pytest.mark.parametrize("change", [
    {"id": "Bad Id"}, {"id": "x" * 65}, {"protocol": "telnet"}, {"port": 0}, {"port": 70000},
    {"host": "a b"}, {"host": ""}, {"parameters": {"hostname": "evil"}},
    {"parameters": {"recording-path": "/tmp"}}, {"parameters": {"typescript-path": "/tmp"}},
    {"parameters": {"Bad Name": "1"}},
    {"parameters": {"color-depth": "x" * 5000}}, {"parameters": {f"p{i}": "1" for i in range(65)}},
    {"allowed_roles": ["root"]}, {"allowed_users": [""]}, {"recording_policy": {"fail_open": True}},
    {"recording_policy": {"retention_days": 0}}, {"password": "p" * 2000}, {"surprise": 1},
])
async def test_bad_connection_specs_are_refused_with_422(gw, change):
    admin = await gw.api("admin")
    spec = {"id": "ok-id", "name": "n", "protocol": "vnc", "host": "10.0.0.1", "port": 5900} | change
    resp = await admin.post("/api/admin/connections", json=spec)
    assert resp.status_code == 422, resp.text
    assert [c["id"] for c in (await admin.get("/api/admin/connections")).json()] == ["lin-vnc", "win-rdp"]


async def test_ensure_connection_is_idempotent(gw):
    spec = connections.ConnectionIn(id="same", name="Same", protocol="vnc", host="10.0.0.9", port=5900,
                                 password="pw", allowed_roles=["vendor"])
    connections.ensure_connection(gw.db, gw.settings, spec)
    connections.ensure_connection(gw.db, gw.settings, spec)
    admin = await gw.api("admin")
    found = [c for c in (await admin.get("/api/admin/connections")).json() if c["id"] == "same"]
    assert len(found) == 1 and found[0]["allowed_roles"] == ["vendor"] and found[0]["has_password"]


# -- tunnel tokens ---------------------------------------------------------------------------

async def test_tunnel_token_is_one_time(gw):
    vendor = await gw.api("vendor")
    token = (await vendor.post("/api/connections/win-rdp/tunnel-token")).json()["token"]
    user, connection = tokens.consume_tunnel_token(gw.db, token)
    assert user.username == "vendor" and connection.id == "win-rdp"
    with pytest.raises(AuthError, match="already used"):
        tokens.consume_tunnel_token(gw.db, token)
    for bad in (None, "", "not-a-token"):
        with pytest.raises(AuthError):
            tokens.consume_tunnel_token(gw.db, bad)
    # Only a hash is stored: the database alone cannot open a tunnel.
    raw = b"".join(p.read_bytes() for p in gw.settings.var_dir.glob("gui-recorder.db*"))
    assert token.encode() not in raw


async def test_tunnel_token_expires_on_the_clock(gw):
    vendor = await gw.api("vendor")
    ttl = gw.settings.tunnel_token_ttl_seconds
    early = (await vendor.post("/api/connections/win-rdp/tunnel-token")).json()["token"]
    late = (await vendor.post("/api/connections/win-rdp/tunnel-token")).json()["token"]
    gw.clock.advance(ttl - 1)
    assert tokens.consume_tunnel_token(gw.db, early)[0].username == "vendor"
    gw.clock.advance(1)
    with pytest.raises(AuthError, match="expired"):
        tokens.consume_tunnel_token(gw.db, late)


async def test_tunnel_token_is_bound_to_its_user(gw):
    vendor = await gw.api("vendor")
    token = (await vendor.post("/api/connections/win-rdp/tunnel-token")).json()["token"]
    operator_cookie = await gw.login("operator")
    with pytest.raises(ForbiddenError, match="another user"):
        tokens.consume_tunnel_token(gw.db, token, operator_cookie)
    with pytest.raises(AuthError, match="already used"):
        tokens.consume_tunnel_token(gw.db, token, operator_cookie)  # a stolen token is burnt
    token = (await vendor.post("/api/connections/win-rdp/tunnel-token")).json()["token"]
    vendor_cookie = await gw.login("vendor")
    assert tokens.consume_tunnel_token(gw.db, token, vendor_cookie)[0].username == "vendor"


async def test_revoked_grant_or_deleted_connection_burns_tokens(gw):
    vendor = await gw.api("vendor")
    token = (await vendor.post("/api/connections/win-rdp/tunnel-token")).json()["token"]
    admin = await gw.api("admin")
    assert (await admin.delete("/api/admin/connections/win-rdp")).status_code == 204
    with pytest.raises(AuthError):
        tokens.consume_tunnel_token(gw.db, token)


# -- sessions --------------------------------------------------------------------------------

def open_session(gw: Gateway, username: str, connection_id: str, addr: str = "203.0.113.5") -> Session:
    session = rows.create_session(gw.db, _user(gw.db, username), connections.get_connection(gw.db, connection_id),
                                          addr, None)
    gw.clock.advance(60)
    return session


async def test_session_listing_is_visible_per_role(gw):
    mine = open_session(gw, "vendor", "win-rdp")
    rows.end_session(gw.db, mine.id, "ended", "user disconnected", 1234, 56, 1_767_000_000_000)
    theirs = open_session(gw, "operator", "lin-vnc")
    rows.end_session(gw.db, theirs.id, "failed", "guacd error 519", 0, 0, None)
    live = open_session(gw, "operator", "win-rdp")
    rows.update_session(gw.db, live.id, guacd_connection_id="$abc")

    seen = {}
    for username in ("admin", "auditor", "operator", "vendor", "vendor2"):
        api = await gw.api(username)
        seen[username] = [s["id"] for s in (await api.get("/api/sessions")).json()]
    # Live first, then the newest.
    assert seen["admin"] == seen["auditor"] == [live.id, theirs.id, mine.id]
    assert seen["operator"] == [live.id, theirs.id]
    assert seen["vendor"] == [mine.id] and seen["vendor2"] == []

    vendor = await gw.api("vendor")
    detail = (await vendor.get(f"/api/sessions/{mine.id}")).json()
    assert {k: detail[k] for k in ("user", "connection", "protocol", "client_addr", "bytes_to_client",
                                   "bytes_from_client", "end_reason", "status", "wall_start")} == {
        "user": "vendor", "connection": "win-rdp", "protocol": "rdp", "client_addr": "203.0.113.5",
        "bytes_to_client": 1234, "bytes_from_client": 56, "end_reason": "user disconnected", "status": "ended",
        "wall_start": 1_767_000_000_000}
    assert datetime.fromisoformat(detail["ended_at"]) - datetime.fromisoformat(detail["started_at"]) == timedelta(
        seconds=60)
    hidden = await vendor.get(f"/api/sessions/{theirs.id}")
    assert hidden.status_code == 404, "another user's session does not even exist for a vendor"
    auditor = await gw.api("auditor")
    assert (await auditor.get(f"/api/sessions/{live.id}")).json()["status"] == "active"


async def test_session_filters(gw):
    first = open_session(gw, "vendor", "win-rdp")
    rows.end_session(gw.db, first.id, "terminated", "terminated by admin", 0, 0, None)
    middle = gw.clock.now
    second = open_session(gw, "operator", "lin-vnc")
    rows.end_session(gw.db, second.id, "ended", "user disconnected", 0, 0, None)
    auditor = await gw.api("auditor")

    async def ids(**params) -> list[str]:
        resp = await auditor.get("/api/sessions", params=params)
        assert resp.status_code == 200, resp.text
        return [s["id"] for s in resp.json()]

    assert await ids(user="vendor") == [first.id]
    assert await ids(connection="lin-vnc") == [second.id]
    assert await ids(status="terminated") == [first.id]
    assert await ids(status="active") == []
    assert await ids(since=middle.isoformat()) == [second.id]
    assert await ids(until=(middle - timedelta(seconds=1)).isoformat()) == [first.id]
    assert await ids(limit=1) == [second.id]
    for bad in ({"status": "weird"}, {"limit": 0}, {"limit": 10**6}, {"since": "yesterday"}, {"user": "u" * 65}):
        assert (await auditor.get("/api/sessions", params=bad)).status_code == 422, bad
    assert (await gw.client().get("/api/sessions")).status_code == 401


async def test_update_session_refuses_unknown_fields(gw):
    session = open_session(gw, "vendor", "win-rdp")
    with pytest.raises(TypeError):
        rows.update_session(gw.db, session.id, bytes_to_clinet=1)
    with pytest.raises(ValueError):
        rows.update_session(gw.db, session.id, status="paused")
    rows.update_session(gw.db, session.id, recording_complete=True, wall_start=5)
    with gw.db.session() as s:
        row = s.get(Session, session.id)
        assert row.recording_complete is True and row.wall_start == 5 and row.status == "active"


# -- audit, errors, documentation ---------------------------------------------------------------

async def test_audit_export_is_json_lines_in_order(gw):
    await gw.client().post("/api/auth/login", json={"username": "vendor", "password": "nope"})
    admin = await gw.api("admin")
    resp = await admin.get("/api/audit/export")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in resp.text.splitlines()]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert [e["action"] for e in events][-2:] == ["auth.login_failed", "auth.login"]
    assert {"at", "username", "action", "target", "client_addr", "detail"} <= set(events[0])


async def test_openapi_documents_every_api_route_and_the_web_is_served_last(gw):
    client = gw.client()
    schema = (await client.get("/openapi.json")).json()
    for path in ("/api/auth/login", "/api/auth/logout", "/api/auth/me", "/api/connections",
                 "/api/connections/{connection_id}/tunnel-token", "/api/admin/connections",
                 "/api/admin/connections/{connection_id}", "/api/sessions", "/api/sessions/{session_id}",
                 "/api/audit", "/api/audit/export"):
        assert path in schema["paths"], path
    login = schema["paths"]["/api/auth/login"]["post"]
    assert login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("LoginResult")
    assert (await client.get("/docs")).status_code == 200
    index = await client.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert (await client.get("/api/no-such-route")).status_code == 404
