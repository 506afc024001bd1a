"""Directory sign-in against a real OpenLDAP slapd (the `directory` fixture, tests/support/slapd.py).

The gateway is the real application in this process (httpx's ASGI transport, a SQLite database in
a temporary directory); the directory is the real server on loopback, with the test tree:
alice in gr-admins, bob in gr-vendors, carol in gr-auditors and gr-vendors, dave only in `staff`
(mapped to no role).
"""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager

import httpx
import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server
from sqlalchemy import select

from gui_recorder.db import User
from gui_recorder.gateway import accounts
from gui_recorder.gateway.app import create_app
from gui_recorder.settings import Settings
from gui_recorder.stack.process import free_port
from support.slapd import make_tls

GROUP_ROLES = {"gr-admins": "admin", "gr-auditors": "auditor", "gr-vendors": "vendor"}


def directory_settings(tmp_path, directory, **extra) -> Settings:
    base = dict(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused",
                s3_endpoint=f"127.0.0.1:{free_port()}", admin_password="admin-" + secrets.token_hex(8),
                ldap_url=directory.url, ldap_user_dn_template="uid={username}," + directory.people,
                ldap_group_base=directory.groups, ldap_group_roles=GROUP_ROLES)
    return Settings(**{**base, **extra})


@asynccontextmanager
async def gateway(settings: Settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.20", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            client.app = app
            yield client


async def login(client, username: str, password: str) -> httpx.Response:
    resp = await client.post("/api/auth/login", json={"username": username, "password": password})
    client.cookies.clear()
    return resp


async def me(client, token: str) -> httpx.Response:
    return await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})


def row(client, username: str) -> User | None:
    with client.app.state.services.db.session() as s:
        return s.scalar(select(User).where(User.username == username))


async def test_directory_users_sign_in_with_the_role_their_first_mapped_group_gives(tmp_path, directory):
    async with gateway(directory_settings(tmp_path, directory)) as client:
        for uid, role in (("alice", "admin"), ("bob", "vendor"), ("carol", "auditor")):
            resp = await login(client, uid, directory.passwords[uid])
            assert resp.status_code == 200, resp.text
            assert resp.json()["role"] == role
            assert (await me(client, resp.json()["token"])).json()["role"] == role
            user = row(client, uid)
            assert user.source == "ldap" and user.role == role
            assert directory.group_dn(next(g for g, r in GROUP_ROLES.items() if r == role)) in user.external_groups
        # The directory judged the password: nothing of it is stored here, and no local sign-in works.
        with pytest.raises(Exception):
            accounts.authenticate(client.app.state.services.db, "alice", directory.passwords["alice"])


async def test_a_wrong_directory_password_is_a_failed_sign_in_charged_and_audited(tmp_path, directory):
    async with gateway(directory_settings(tmp_path, directory)) as client:
        wrong = await login(client, "bob", "not-" + directory.passwords["bob"])
        unknown = await login(client, "nobody", "whatever-it-is")
        empty_bind = await login(client, "bob", " ")  # not empty, but never an anonymous bind either
        assert (wrong.status_code, unknown.status_code, empty_bind.status_code) == (401, 401, 401)
        assert wrong.json() == unknown.json()  # no telling which names exist
        throttle = client.app.state.services.login_throttle
        assert throttle.failures("bob") == 2 and throttle.failures("nobody") == 1
        assert row(client, "bob") is None and row(client, "nobody") is None
        ok = await login(client, "bob", directory.passwords["bob"])
        assert ok.status_code == 200 and throttle.failures("bob") == 0


async def test_a_user_in_no_mapped_group_cannot_sign_in(tmp_path, directory):
    async with gateway(directory_settings(tmp_path, directory)) as client:
        resp = await login(client, "dave", directory.passwords["dave"])
        assert resp.status_code == 403
        assert "no group" in resp.json()["detail"]
        assert row(client, "dave") is None


async def test_removed_from_the_group_a_user_loses_access_at_the_next_sign_in(tmp_path, directory):
    admin = Connection(Server(directory.url), directory.admin_dn, directory.admin_password, auto_bind=True)
    group = directory.group_dn("gr-vendors")
    async with gateway(directory_settings(tmp_path, directory)) as client:
        first = await login(client, "bob", directory.passwords["bob"])
        assert first.status_code == 200 and first.json()["role"] == "vendor"
        token = first.json()["token"]
        assert admin.modify(group, {"member": [(MODIFY_DELETE, [directory.user_dn("bob")])]}), admin.result
        try:
            again = await login(client, "bob", directory.passwords["bob"])
            assert again.status_code == 403
            # The sign-in made while he was in the group ends with the refusal.
            assert (await me(client, token)).status_code == 401
        finally:
            assert admin.modify(group, {"member": [(MODIFY_ADD, [directory.user_dn("bob")])]}), admin.result
            admin.unbind()
        back = await login(client, "bob", directory.passwords["bob"])
        assert back.status_code == 200 and back.json()["role"] == "vendor"


async def test_service_account_search_over_starttls_with_the_directorys_ca(tmp_path, directory):
    settings = directory_settings(tmp_path, directory, ldap_user_dn_template=None, ldap_bind_dn=directory.service_dn,
                                  ldap_bind_password=directory.service_password, ldap_user_base=directory.people,
                                  ldap_start_tls=True, ldap_ca_file=directory.ca_file)
    async with gateway(settings) as client:
        resp = await login(client, "carol", directory.passwords["carol"])
        assert resp.status_code == 200 and resp.json()["role"] == "auditor"
        assert (await login(client, "carol", "wrong-password")).status_code == 401


async def test_ldaps_with_the_directorys_ca(tmp_path, directory):
    settings = directory_settings(tmp_path, directory, ldap_url=directory.ldaps_url, ldap_ca_file=directory.ca_file)
    async with gateway(settings) as client:
        resp = await login(client, "alice", directory.passwords["alice"])
        assert resp.status_code == 200 and resp.json()["role"] == "admin"
        assert (await login(client, "alice", "wrong-password")).status_code == 401


async def test_starttls_to_a_directory_whose_certificate_another_ca_signed_is_refused(tmp_path, directory):
    other_ca, _, _ = make_tls(tmp_path)  # a CA that did not sign slapd's certificate
    settings = directory_settings(tmp_path, directory, ldap_start_tls=True, ldap_ca_file=other_ca)
    async with gateway(settings) as client:
        resp = await login(client, "carol", directory.passwords["carol"])
        assert resp.status_code == 503 and resp.json()["error"] == "IdentityProviderError"
        # No verdict on the password: nothing is charged against the account.
        assert client.app.state.services.login_throttle.failures("carol") == 0


async def test_a_directory_that_is_down_is_503_and_charges_nothing(tmp_path, directory):
    settings = directory_settings(tmp_path, directory, ldap_url=f"ldap://127.0.0.1:{free_port()}",
                                  ldap_timeout_seconds=2)
    async with gateway(settings) as client:
        resp = await login(client, "bob", directory.passwords["bob"])
        assert resp.status_code == 503
        assert client.app.state.services.login_throttle.failures("bob") == 0


async def test_a_local_account_is_never_looked_up_in_the_directory(tmp_path, directory):
    settings = directory_settings(tmp_path, directory)
    local_password = "local-bob-" + secrets.token_hex(6)
    async with gateway(settings) as client:
        accounts.ensure_user(client.app.state.services.db, "bob", local_password, "operator")
        assert (await login(client, "bob", directory.passwords["bob"])).status_code == 401
        ok = await login(client, "bob", local_password)
        assert ok.status_code == 200 and ok.json()["role"] == "operator"
        assert row(client, "bob").source == "local"
        # And the admin seeded from the settings signs in locally, the directory configured or not.
        admin = await login(client, "admin", settings.admin_password.get_secret_value())
        assert admin.status_code == 200


def test_identity_settings_reach_a_child_process_intact(tmp_path, monkeypatch):
    """The worker and `gui-recorder dev`'s children get the settings as variables (cli.settings_env):
    the group maps and role lists must come back as they were, in order."""
    from gui_recorder.cli import settings_env

    settings = Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s", ldap_url="ldap://127.0.0.1:1",
                        ldap_group_roles={"zz-admins": "admin", "aa-vendors": "vendor"}, mfa_roles=["auditor"],
                        oidc_group_roles={"ops": "operator"})
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    again = Settings(_env_file=None)
    assert list(again.ldap_group_roles.items()) == [("zz-admins", "admin"), ("aa-vendors", "vendor")]
    assert again.mfa_roles == ["auditor"] and again.oidc_group_roles == {"ops": "operator"}
    assert again.tiers == settings.tiers
    # ... and through the env file `gui-recorder dev` writes for the commands on its stack.
    for name in settings_env(settings):
        monkeypatch.delenv(name)
    env_file = tmp_path / "gui-recorder.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings_env(settings).items()))
    from_file = Settings(_env_file=env_file)
    assert from_file.ldap_group_roles == settings.ldap_group_roles and from_file.mfa_roles == ["auditor"]

