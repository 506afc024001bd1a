"""The TOTP second factor: enrolment with a QR code, codes, replay, recovery codes, throttling.

The real application in this process with a real SQLite database; time is the injected clock
(TOTP steps, ticket expiry), never a sleep. The codes come from pyotp as an authenticator app
would make them from the enrolment URI the gateway gave.
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from contextlib import asynccontextmanager

import httpx
import pyotp
import pytest

from gui_recorder.gateway import accounts
from gui_recorder.gateway.app import create_app
from gui_recorder.settings import Settings
from gui_recorder.stack.process import free_port
from support.inprocess import Clock

PASSWORDS = {"admin": "admin-" + secrets.token_hex(6) + "-pw", "vendor": "vendor-" + secrets.token_hex(6) + "-pw",
             "auditor": "auditor-" + secrets.token_hex(6) + "-pw"}


@asynccontextmanager
async def gateway(tmp_path, **extra):
    settings = Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused",
                        s3_endpoint=f"127.0.0.1:{free_port()}", admin_password=PASSWORDS["admin"],
                        mfa_roles=["admin", "auditor"], **extra)
    clock = Clock()
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        db = app.state.services.db
        accounts.ensure_user(db, "vendor", PASSWORDS["vendor"], "vendor")
        accounts.ensure_user(db, "auditor", PASSWORDS["auditor"], "auditor")
        transport = httpx.ASGITransport(app=app, client=("192.0.2.30", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            client.app, client.clock = app, clock
            yield client


async def password(client, name: str) -> dict:
    resp = await client.post("/api/auth/login", json={"username": name, "password": PASSWORDS[name]})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def code(client, ticket: str, value: str) -> httpx.Response:
    resp = await client.post("/api/auth/mfa", json={"ticket": ticket, "code": value})
    client.cookies.clear()
    return resp


def now_code(client, secret: str, steps_later: int = 0) -> str:
    return pyotp.TOTP(secret).at(client.clock.now.timestamp() + 30 * steps_later)


async def enrol(client, name: str) -> tuple[str, list[str]]:
    first = await password(client, name)
    secret = pyotp.parse_uri(first["otpauth_uri"]).secret
    done = await code(client, first["ticket"], now_code(client, secret))
    assert done.status_code == 200, done.text
    return secret, done.json()["recovery_codes"]


async def test_an_admin_enrols_with_the_qr_code_then_signs_in_with_a_code(tmp_path):
    async with gateway(tmp_path) as client:
        first = await password(client, "admin")
        # A right password is not a sign-in yet: no token, no cookie, and nothing it opens.
        assert first["token"] is None and first["mfa"] == "enroll" and "gr_session" not in client.cookies
        assert (await client.get("/api/connections", headers={"Authorization": f"Bearer {first['ticket']}"})
                ).status_code == 401
        uri = urllib.parse.urlparse(first["otpauth_uri"])
        assert uri.scheme == "otpauth" and "issuer=gui-recorder" in uri.query and "admin" in uri.path
        assert first["qr_svg"].startswith("data:image/svg+xml")
        svg = urllib.parse.unquote(first["qr_svg"].split(",", 1)[1]) if ";base64" not in first["qr_svg"] \
            else base64.b64decode(first["qr_svg"].split(",", 1)[1]).decode()
        assert "<svg" in svg and "path" in svg

        secret = pyotp.parse_uri(first["otpauth_uri"]).secret
        assert (await code(client, first["ticket"], "000000" if now_code(client, secret) != "000000"
                           else "111111")).status_code == 401
        done = await code(client, first["ticket"], now_code(client, secret))
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["token"] and body["role"] == "admin" and len(body["recovery_codes"]) == 10
        me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
        assert me.json()["username"] == "admin"

        # Enrolled: the next sign-in asks for a code, with no new secret; the code just used is refused.
        client.clock.advance(5)
        again = await password(client, "admin")
        assert again["mfa"] == "verify" and again["otpauth_uri"] is None and again["qr_svg"] is None
        assert (await code(client, again["ticket"], now_code(client, secret))).status_code == 401  # replay
        client.clock.advance(30)
        ok = await code(client, again["ticket"], now_code(client, secret))
        assert ok.status_code == 200 and ok.json()["recovery_codes"] is None
        # The enrolment ticket cannot enrol a second secret over the first.
        assert (await code(client, first["ticket"], now_code(client, secret, 1))).status_code == 401


async def test_roles_not_named_sign_in_with_a_password_alone(tmp_path):
    async with gateway(tmp_path) as client:
        vendor = await password(client, "vendor")
        assert vendor["token"] and vendor["mfa"] is None
        auditor = await password(client, "auditor")
        assert auditor["token"] is None and auditor["mfa"] == "enroll"


async def test_a_recovery_code_works_once(tmp_path):
    async with gateway(tmp_path) as client:
        _, recovery = await enrol(client, "auditor")
        assert len(set(recovery)) == 10
        first = await password(client, "auditor")
        used = await code(client, first["ticket"], recovery[3].lower())  # typed as it comes
        assert used.status_code == 200 and used.json()["role"] == "auditor"
        second = await password(client, "auditor")
        assert (await code(client, second["ticket"], recovery[3])).status_code == 401
        assert (await code(client, second["ticket"], recovery[4])).status_code == 200


async def test_wrong_codes_are_throttled_like_passwords_and_the_password_does_not_reset_them(tmp_path):
    async with gateway(tmp_path, login_free_failures_per_account=3, login_backoff_base_seconds=60) as client:
        secret, _ = await enrol(client, "admin")
        throttle = client.app.state.services.login_throttle
        ticket = (await password(client, "admin"))["ticket"]
        wrong = str((int(now_code(client, secret)) + 1) % 1_000_000).zfill(6)
        statuses = [(await code(client, ticket, wrong)).status_code for _ in range(3)]
        assert statuses == [401, 401, 401] and throttle.failures("admin") == 3
        # The right password again does not clear what the codes cost.
        ticket = (await password(client, "admin"))["ticket"]
        assert throttle.failures("admin") == 3
        assert (await code(client, ticket, wrong)).status_code == 401
        locked = await code(client, ticket, now_code(client, secret, 1))
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        events = client.app.state.services.db
        from sqlalchemy import select

        from gui_recorder.db import AuditEvent
        with events.session() as s:
            actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.username == "admin"))]
        assert actions.count("auth.mfa_failed") == 4 and "auth.password_ok" in actions


async def test_a_ticket_expires_and_a_forged_one_is_refused(tmp_path):
    async with gateway(tmp_path) as client:
        first = await password(client, "admin")
        secret = pyotp.parse_uri(first["otpauth_uri"]).secret
        client.clock.advance(client.app.state.services.settings.mfa_ticket_seconds + 1)
        late = await code(client, first["ticket"], now_code(client, secret))
        assert late.status_code == 401 and "expired" in late.json()["detail"]
        forged = await code(client, first["ticket"][:-4] + "AAAA", now_code(client, secret))
        assert forged.status_code == 401
        # Refused tickets name no account: nothing is charged.
        assert client.app.state.services.login_throttle.failures("admin") == 0


@pytest.mark.parametrize("roles", [["admin", "nobody"]])
def test_mfa_roles_must_be_roles(roles, tmp_path):
    with pytest.raises(ValueError, match="mfa_roles"):
        Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s", mfa_roles=roles)


async def test_an_admin_resets_a_lost_second_factor_and_the_user_enrols_again(tmp_path):
    async with gateway(tmp_path) as client:
        await enrol(client, "auditor")
        _, admin_recovery = await enrol(client, "admin")
        ticket = (await password(client, "admin"))["ticket"]
        admin_token = (await code(client, ticket, admin_recovery[0])).json()["token"]
        vendor_token = (await password(client, "vendor"))["token"]
        client.cookies.clear()
        refused = await client.delete("/api/admin/users/auditor/mfa", headers={"Authorization": f"Bearer {vendor_token}"})
        assert refused.status_code == 403
        headers = {"Authorization": f"Bearer {admin_token}"}
        assert (await client.delete("/api/admin/users/auditor/mfa", headers=headers)).status_code == 204
        assert (await client.delete("/api/admin/users/nobody/mfa", headers=headers)).status_code == 404
        again = await password(client, "auditor")
        assert again["mfa"] == "enroll" and again["qr_svg"]
        audit = await client.get("/api/audit", params={"action": "user.mfa_reset"}, headers=headers)
        assert [(e["username"], e["target"]) for e in audit.json()] == [("admin", "auditor")]


async def test_new_recovery_codes_need_a_current_code_and_retire_the_old_ones(tmp_path):
    async with gateway(tmp_path) as client:
        secret, old = await enrol(client, "auditor")
        ticket = (await password(client, "auditor"))["ticket"]
        client.clock.advance(30)
        token = (await code(client, ticket, now_code(client, secret))).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        # The sign-in cookie alone mints nothing: a current code is needed, and one already used is not one.
        used = await client.post("/api/auth/mfa/recovery-codes", json={"code": now_code(client, secret)},
                                 headers=headers)
        assert used.status_code == 401
        client.clock.advance(30)
        fresh = await client.post("/api/auth/mfa/recovery-codes", json={"code": now_code(client, secret)},
                                  headers=headers)
        assert fresh.status_code == 200, fresh.text
        new = fresh.json()["recovery_codes"]
        assert len(new) == 10 and not set(new) & set(old)
        ticket = (await password(client, "auditor"))["ticket"]
        assert (await code(client, ticket, old[0])).status_code == 401
        assert (await code(client, ticket, new[0])).status_code == 200
