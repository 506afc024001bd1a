"""The admin console's API in process (users, groups, grants, settings), every change audited; and the
CLI's `user add` / `user list` on a real database (the password from stdin, never argv)."""

from __future__ import annotations

import secrets
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select

from gui_recorder.db import AuditEvent
from gui_recorder.gateway import connections
from gui_recorder.gateway.app import create_app
from gui_recorder.cli import settings_env
from support.inprocess import sign_in_all
from test_route_matrix import _settings

CONN = connections.ConnectionIn(id="crm", name="CRM", protocol="vnc", host="10.9.9.3", port=5900, tags=["sales"],
                                password="target-secret")


@pytest.fixture
async def console(tmp_path):
    admin_pw = secrets.token_urlsafe(18)
    settings = _settings(tmp_path, admin_password=admin_pw)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        connections.ensure_connection(app.state.services.db, settings, CONN)
        transport = httpx.ASGITransport(app=app, client=("192.0.2.40", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            tokens = await sign_in_all(client, {"admin": admin_pw})
            client.headers["Authorization"] = f"Bearer {tokens['admin']}"
            yield app, client


def _actions(app) -> list[tuple[str, str | None]]:
    with app.state.services.db.session() as s:
        return [(e.action, e.target) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


async def _sign_in(client, name: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": name, "password": password},
                             headers={"Authorization": ""})


async def test_an_admin_manages_an_account_from_creation_to_deletion(console):
    app, client = console
    pw, pw2 = "vendor-" + secrets.token_urlsafe(12), "vendor-" + secrets.token_urlsafe(12)
    made = await client.post("/api/admin/users", json={"username": "acme.vendor", "role": "vendor", "password": pw})
    assert made.status_code == 201, made.text
    assert made.json()["source"] == "local" and "password" not in made.text and pw not in made.text
    assert (await client.post("/api/admin/users", json={"username": "acme.vendor", "role": "vendor",
                                                         "password": pw})).status_code == 409
    weak = await client.post("/api/admin/users", json={"username": "weak", "role": "vendor", "password": "short"})
    assert weak.status_code == 422 and weak.json()["error"] == "PasswordPolicyError"
    ghost_role = await client.post("/api/admin/users", json={"username": "x", "role": "root", "password": pw})
    assert ghost_role.status_code == 422

    login = await _sign_in(client, "acme.vendor", pw)
    assert login.status_code == 200
    vendor_token = login.json()["token"]
    listed = {u["username"]: u for u in (await client.get("/api/admin/users")).json()}
    assert listed["acme.vendor"]["last_sign_in_at"] is not None and listed["admin"]["role"] == "admin"

    auditor = await client.put("/api/admin/users/acme.vendor/role", json={"role": "auditor"})
    assert auditor.json()["role"] == "auditor"
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {vendor_token}"})
    assert me.json()["role"] == "auditor", "a role change applies to the next request, no new sign-in needed"

    assert (await client.put("/api/admin/users/acme.vendor/password", json={"password": pw2})).status_code == 200
    assert (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {vendor_token}"})).status_code == 401
    assert (await _sign_in(client, "acme.vendor", pw)).status_code == 401
    token2 = (await _sign_in(client, "acme.vendor", pw2)).json()["token"]

    assert (await client.post("/api/admin/users/acme.vendor/disable")).json()["disabled"] is True
    assert (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token2}"})).status_code == 401
    assert (await _sign_in(client, "acme.vendor", pw2)).status_code == 401
    assert (await client.post("/api/admin/users/acme.vendor/enable")).json()["disabled"] is False
    assert (await _sign_in(client, "acme.vendor", pw2)).status_code == 200

    assert (await client.post("/api/admin/users/admin/disable")).status_code == 409  # the last admin
    assert (await client.delete("/api/admin/users/acme.vendor")).status_code == 204
    assert (await client.get("/api/admin/users/acme.vendor")).status_code == 404
    actions = [a for a, target in _actions(app) if target == "acme.vendor" and a.startswith("user.")]
    assert actions == ["user.create", "user.role", "user.password_reset", "user.disable", "user.enable",
                       "user.delete"]


async def test_grants_to_a_user_a_group_and_a_tag_open_connections(console):
    app, client = console
    pw = "vendor-" + secrets.token_urlsafe(12)
    for name in ("ann", "bob"):
        assert (await client.post("/api/admin/users", json={"username": name, "role": "vendor",
                                                            "password": pw})).status_code == 201
    tokens = {n: (await _sign_in(client, n, pw)).json()["token"] for n in ("ann", "bob")}

    async def opens(name: str) -> set[str]:
        resp = await client.get("/api/connections", headers={"Authorization": f"Bearer {tokens[name]}"})
        return {c["id"] for c in resp.json()}

    async def token_for(name: str) -> int:
        return (await client.post("/api/connections/crm/tunnel-token",
                                  headers={"Authorization": f"Bearer {tokens[name]}"})).status_code

    assert await opens("ann") == set() and await token_for("ann") == 403
    direct = (await client.post("/api/admin/grants", json={"user": "ann", "connection": "crm"})).json()
    assert await opens("ann") == {"crm"} and await token_for("ann") == 200 and await opens("bob") == set()
    assert (await client.post("/api/admin/grants", json={"user": "ann", "connection": "crm"})).status_code == 409
    assert (await client.post("/api/admin/grants", json={"user": "ann", "group": "g"})).status_code == 422
    assert (await client.post("/api/admin/grants", json={"user": "nobody", "tag": "sales"})).status_code == 404
    assert (await client.delete(f"/api/admin/grants/{direct['id']}")).status_code == 204
    assert await opens("ann") == set()

    group = await client.post("/api/admin/groups", json={"name": "Sales team", "members": ["bob"]})
    assert group.status_code == 201 and group.json()["members"] == ["bob"]
    by_tag = await client.post("/api/admin/grants", json={"group": "Sales team", "tag": "sales"})
    assert by_tag.status_code == 201
    assert await opens("bob") == {"crm"} and await token_for("bob") == 200 and await opens("ann") == set()
    # A connection that loses the tag leaves the grant's reach.
    connections.ensure_connection(app.state.services.db, app.state.services.settings,
                                  CONN.model_copy(update={"tags": []}))
    assert await opens("bob") == set()
    connections.ensure_connection(app.state.services.db, app.state.services.settings, CONN)
    # Membership through the user's groups, set from the user's side.
    assert (await client.put("/api/admin/users/ann/groups", json={"groups": ["Sales team"]})).status_code == 200
    assert await opens("ann") == {"crm"}
    assert (await client.delete("/api/admin/groups/Sales team")).status_code == 204
    assert await opens("ann") == set() and (await client.get("/api/admin/grants")).json() == []
    actions = {a for a, _ in _actions(app)}
    assert {"grant.create", "grant.delete", "group.create", "group.delete", "user.groups"} <= actions


async def test_external_accounts_take_no_password_and_cannot_sign_in_with_one(console):
    app, client = console
    made = await client.post("/api/admin/users", json={"username": "dir.user", "role": "vendor", "source": "ldap"})
    assert made.status_code == 201 and made.json()["source"] == "ldap"
    with_pw = await client.post("/api/admin/users", json={"username": "dir.two", "role": "vendor",
                                                          "source": "oidc", "password": "whatever-123-xyz"})
    assert with_pw.status_code == 422
    assert (await _sign_in(client, "dir.user", "!external")).status_code == 401
    reset = await client.put("/api/admin/users/dir.user/password", json={"password": "x" * 20 + "abcd"})
    assert reset.status_code == 409


async def test_the_settings_page_shows_values_but_never_a_secret(console):
    app, client = console
    settings = app.state.services.settings
    rows = {r["variable"]: r for r in (await client.get("/api/admin/settings")).json()}
    assert rows["GUI_RECORDER_SECRET_KEY"]["value"] == "(set)"
    assert rows["GUI_RECORDER_PASSWORD_MIN_LENGTH"]["value"] == str(settings.password_min_length)
    body = (await client.get("/api/admin/settings")).text
    for secret in (settings.secret_key.get_secret_value(), settings.s3_secret_key.get_secret_value(),
                   settings.admin_password.get_secret_value()):
        assert secret not in body


def test_cli_user_add_reads_the_password_from_stdin_and_user_list_shows_it(tmp_path):
    settings = _settings(tmp_path)
    env = {**settings_env(settings), "PATH": "/usr/bin:/bin"}
    pw = "first-admin-" + secrets.token_urlsafe(10)
    run = [sys.executable, "-m", "gui_recorder.cli", "user"]
    added = subprocess.run([*run, "add", "boss", "--role", "admin"], input=pw + "\n", env=env,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    weak = subprocess.run([*run, "add", "weak", "--role", "vendor"], input="short\n", env=env,
                          capture_output=True, text=True, timeout=60)
    assert weak.returncode == 2 and "at least" in weak.stderr
    listed = subprocess.run([*run, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "boss" in listed.stdout and "admin" in listed.stdout
    assert "weak" not in listed.stdout and pw not in listed.stdout
    # The secrets from files (docs/production.md), not the environment: the same database opens.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for name in ("GUI_RECORDER_SECRET_KEY", "GUI_RECORDER_S3_SECRET_KEY"):
        (secrets_dir / name).write_text(env.pop(name))
    from_files = subprocess.run([*run[:3], "--secrets-dir", str(secrets_dir), "user", "list"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert from_files.returncode == 0 and "boss" in from_files.stdout, from_files.stderr
    without = subprocess.run([*run, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert without.returncode == 2 and "SECRET_KEY" in without.stderr

    from gui_recorder.db import Database
    from gui_recorder.gateway import accounts

    db = Database(settings)
    try:
        assert accounts.authenticate(db, "boss", pw).role == "admin"
        with db.session() as s:
            event = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.create"))
        assert event.target == "boss" and event.detail["by"] == "cli"
    finally:
        db.dispose()
