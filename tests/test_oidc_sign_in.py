"""Single sign-on against a real OpenID Connect provider (django-oauth-toolkit, in its own process).

The gateway runs on a real port (tests/support/identity_gateway.py); httpx plays the browser, one
cookie jar across the provider (``localhost``) and the gateway (``127.0.0.1``), following every
redirect of the authorization-code flow: nothing of the protocol is mocked on either side.
"""

from __future__ import annotations

import re
import urllib.parse

import httpx
import pytest
from sqlalchemy import select

from gui_recorder.db import AuditEvent, User
from gui_recorder.gateway import accounts
from support.identity_gateway import identity_settings, serve
from support.oidc import USERS


@pytest.fixture(scope="module")
def sso_gateway(oidc_provider, directory, tmp_path_factory):
    settings = identity_settings(tmp_path_factory.mktemp("sso-gateway"), oidc_provider.gateway_port,
                                 directory=directory, provider=oidc_provider)
    with serve(settings) as (url, app):
        yield url, app


def browser_client() -> httpx.Client:
    return httpx.Client(follow_redirects=True, timeout=30)


def sso(client: httpx.Client, gateway_url: str, provider, username: str) -> httpx.Response:
    """Start at the gateway's SSO link, sign in on the provider's page, follow back; the last answer."""
    page = client.get(gateway_url + "api/auth/oidc/login")
    assert page.status_code == 200 and "Example SSO" in page.text, page.text[:500]
    assert urllib.parse.urlparse(str(page.url)).hostname == "localhost"
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    nxt = re.search(r'name="next" value="([^"]*)"', page.text)[1]
    return client.post(str(page.url), data={"csrfmiddlewaretoken": csrf, "username": username,
                                            "password": provider.passwords[username], "next": nxt.replace("&amp;", "&")})


def user_row(app, username: str) -> User | None:
    with app.state.services.db.session() as s:
        return s.scalar(select(User).where(User.username == username))


def test_the_authorization_request_uses_pkce_and_a_fresh_state(sso_gateway, oidc_provider):
    url, _ = sso_gateway
    with httpx.Client() as client:
        first = client.get(url + "api/auth/oidc/login")
        second = client.get(url + "api/auth/oidc/login")
    assert first.status_code == 303
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(first.headers["location"]).query))
    assert query["response_type"] == "code" and query["client_id"] == oidc_provider.client_id
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert query["nonce"] and query["state"] and "openid" in query["scope"].split()
    again = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(second.headers["location"]).query))
    assert again["state"] != query["state"] and again["code_challenge"] != query["code_challenge"]
    cookie = first.headers["set-cookie"]
    assert "gr_oidc=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


@pytest.mark.parametrize("username, role", [("sso-anna", "auditor"), ("sso-chef", "admin"), ("sso-ben", "vendor")])
def test_sso_users_land_signed_in_with_the_role_their_group_maps_to(sso_gateway, oidc_provider, username, role):
    url, app = sso_gateway
    with browser_client() as client:
        landed = sso(client, url, oidc_provider, username)
        assert str(landed.url) == url and landed.status_code == 200  # the start page, no error fragment
        me = client.get(url + "api/auth/me")
        assert me.status_code == 200 and me.json()["username"] == username and me.json()["role"] == role
    user = user_row(app, username)
    assert user.source == "oidc" and user.role == role
    assert set(user.external_groups) == set(USERS[username])


def test_sign_out_ends_the_local_session(sso_gateway, oidc_provider):
    url, _ = sso_gateway
    with browser_client() as client:
        sso(client, url, oidc_provider, "sso-ben")
        assert client.get(url + "api/auth/me").status_code == 200
        assert client.post(url + "api/auth/logout").status_code == 204
        assert client.get(url + "api/auth/me").status_code == 401


def test_an_sso_user_in_no_mapped_group_lands_on_the_sign_in_page_with_the_reason(sso_gateway, oidc_provider):
    url, app = sso_gateway
    with browser_client() as client:
        landed = sso(client, url, oidc_provider, "sso-guest")
        fragment = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(str(landed.url)).fragment))
        assert "no group" in fragment["sso-error"]
        assert client.get(url + "api/auth/me").status_code == 401
    assert user_row(app, "sso-guest") is None


def test_an_sso_account_never_takes_over_a_local_one(sso_gateway, oidc_provider):
    url, app = sso_gateway
    accounts.ensure_user(app.state.services.db, "sso-dup", "local-dup-password-1", "operator")
    with browser_client() as client:
        landed = sso(client, url, oidc_provider, "sso-dup")
        assert "sso-error" in urllib.parse.urlparse(str(landed.url)).fragment
        assert client.get(url + "api/auth/me").status_code == 401
    assert user_row(app, "sso-dup").source == "local"


def test_a_callback_with_a_foreign_state_or_a_used_code_signs_no_one_in(sso_gateway, oidc_provider):
    url, app = sso_gateway
    with browser_client() as client:
        # Stop at the callback: the provider's redirect back, with its code and state.
        client.follow_redirects = False
        def follow(resp):
            return client.get(urllib.parse.urljoin(str(resp.url), resp.headers["location"]))

        login_page = client.get(url + "api/auth/oidc/login")
        while login_page.status_code in (301, 302, 303):  # to the provider's authorize, then its login page
            login_page = follow(login_page)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)[1]
        nxt = re.search(r'name="next" value="([^"]*)"', login_page.text)[1].replace("&amp;", "&")
        hop = client.post(str(login_page.url), data={"csrfmiddlewaretoken": csrf, "username": "sso-anna",
                                                     "password": oidc_provider.passwords["sso-anna"], "next": nxt})
        while not hop.headers["location"].startswith(url + "api/auth/oidc/callback"):
            hop = follow(hop)
        callback = hop.headers["location"]
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(callback).query))
        forged = callback.replace(params["state"], "not-" + params["state"])
        refused = client.get(forged)
        assert "sso-error" in refused.headers["location"] and "gr_session" not in refused.headers.get("set-cookie", "")
        # The state cookie is spent with the refusal; a second browser without it gets nothing either.
        with httpx.Client() as other:
            assert "sso-error" in other.get(callback).headers["location"]
    with app.state.services.db.session() as s:
        failures = s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sso_failed")).all()
    assert len(failures) >= 2


async def test_with_the_provider_down_sso_lands_on_the_sign_in_page_and_passwords_still_work(tmp_path):
    """No provider process here: the issuer is a closed port."""
    from gui_recorder.gateway.app import create_app
    from gui_recorder.stack.process import free_port

    settings = identity_settings(tmp_path, free_port(), oidc_issuer=f"http://127.0.0.1:{free_port()}/o",
                                 oidc_client_id="gui-recorder", oidc_timeout_seconds=2)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            offered = (await client.get("/api/auth/providers")).json()
            assert offered["oidc"] is True and offered["oidc_login_url"] == "/api/auth/oidc/login"
            start = await client.get("/api/auth/oidc/login")
            assert start.status_code == 303 and "unavailable" in urllib.parse.unquote_plus(start.headers["location"])
            ok = await client.post("/api/auth/login", json={"username": "admin",
                                                             "password": settings.admin_password.get_secret_value()})
            assert ok.status_code == 200


async def test_without_a_provider_configured_no_sso_is_offered(tmp_path):
    from gui_recorder.gateway.app import create_app
    from gui_recorder.stack.process import free_port

    app = create_app(identity_settings(tmp_path, free_port()))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as client:
            assert (await client.get("/api/auth/providers")).json()["oidc"] is False
            assert (await client.get("/api/auth/oidc/login")).status_code == 500  # ConfigError: says what is missing
            callback = await client.get("/api/auth/oidc/callback", params={"code": "x", "state": "y"})
            assert callback.status_code == 303 and "sso-error" in callback.headers["location"]


def test_the_id_token_checks_refuse_a_wrong_key_audience_nonce_or_expiry(oidc_provider, tmp_path):
    """The client's checks against the real provider's discovery and JWKS. The tokens are forged here
    (a fault the provider itself never produces): with its own key and kid, so that each check in
    turn is the one that must refuse; and one with a key the provider never published."""
    import time

    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from gui_recorder.errors import AuthError
    from gui_recorder.gateway import oidc
    from gui_recorder.stack.process import free_port

    settings = identity_settings(tmp_path, free_port(), provider=oidc_provider)
    key = RSAKey.import_key(oidc_provider.signing_key_pem)
    kid = key.thumbprint()
    now = int(time.time())
    good = {"iss": oidc_provider.issuer, "aud": oidc_provider.client_id, "sub": "7", "iat": now, "exp": now + 300,
            "nonce": "n-1", "preferred_username": "sso-anna", "groups": ["sso-auditors"]}

    def token(claims, signing=key, header_kid=kid):
        return jwt.encode({"alg": "RS256", "kid": header_kid}, claims, signing)

    assert oidc._id_token_claims(settings, token(good), "n-1")["preferred_username"] == "sso-anna"
    stranger = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    for forged, nonce in ((token(good, stranger, stranger.thumbprint()), "n-1"),  # a key never published
                          (token(good, stranger), "n-1"),  # signed by another key under the provider's kid
                          (token({**good, "aud": "another-client"}), "n-1"),
                          (token({**good, "iss": "http://localhost:1/o"}), "n-1"),
                          (token({**good, "exp": now - 3600}), "n-1"),
                          (token(good), "another-nonce")):
        with pytest.raises(AuthError):
            oidc._id_token_claims(settings, forged, nonce)
