"""Single sign-on with OpenID Connect (issue 12 item 3): the authorization-code flow with PKCE.

``GET /api/auth/oidc/login`` sends the browser to the provider with a fresh state, nonce and PKCE
verifier, kept in a sealed, short-lived cookie (``gr_oidc``, bound to this browser; nothing is
kept in the gateway's memory). The provider sends the browser back to ``/api/auth/oidc/callback``
with a code; the gateway redeems it at the token endpoint (Authlib's OAuth2 client, client secret
and the verifier), checks the ID token (signature against the provider's JWKS, issuer, audience,
expiry, nonce: joserfc), maps the groups claim to a role (``oidc_group_roles``, first match wins),
provisions the account (source ``oidc``) and signs it in as a password would, then lands on the
start page. Every refusal lands on the start page too, with the reason in the URL fragment (never
sent to a server, so never in a log).

Sign-out (``POST /api/auth/logout``) ends the local sign-in; the provider's own session is the
provider's. A TOTP second factor is not asked after single sign-on: the provider authenticates.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import urllib.parse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import OAuth2Error
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel

from gui_recorder.errors import AuthError, ConfigError, ForbiddenError, GuiRecorderError, IdentityProviderError
from gui_recorder.gateway import audit, auth, external_users
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])

STATE_COOKIE = "gr_oidc"
STATE_SECONDS = 600  # the user has ten minutes at the provider's login page
DISCOVERY_SECONDS = 3600  # the provider's metadata and keys are fetched again after this (or on a new kid)
_discovery: dict[str, tuple[float, dict, KeySet]] = {}
_discovery_lock = threading.Lock()


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _fernet(settings: Settings) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gui-recorder",
               info=b"oidc-state").derive(settings.secret_key.get_secret_value().encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _get_json(settings: Settings, url: str) -> dict:
    try:
        resp = requests.get(url, timeout=settings.oidc_timeout_seconds, headers={"Accept": "application/json"})
        resp.raise_for_status()
        return resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdentityProviderError(f"the sign-on provider cannot be reached at {url}: {exc}") from exc


def provider(settings: Settings, refresh: bool = False) -> tuple[dict, KeySet]:
    """The provider's discovery document and signing keys, cached for an hour."""
    issuer = settings.oidc_issuer.rstrip("/")
    with _discovery_lock:
        cached = _discovery.get(issuer)
        if cached and not refresh and time.monotonic() - cached[0] < DISCOVERY_SECONDS:
            return cached[1], cached[2]
    meta = _get_json(settings, issuer + "/.well-known/openid-configuration")
    if meta.get("issuer", "").rstrip("/") != issuer:
        raise IdentityProviderError(f"the provider's discovery names the issuer {meta.get('issuer')!r}, "
                                    f"not {issuer!r} (oidc_issuer)")
    try:
        keys = KeySet.import_key_set(_get_json(settings, meta["jwks_uri"]))
    except (KeyError, ValueError, JoseError) as exc:
        raise IdentityProviderError(f"the provider's signing keys cannot be read: {exc}") from exc
    with _discovery_lock:
        _discovery[issuer] = (time.monotonic(), meta, keys)
    return meta, keys


def _client(settings: Settings, redirect_uri: str) -> OAuth2Session:
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return OAuth2Session(settings.oidc_client_id, secret, scope=settings.oidc_scopes, redirect_uri=redirect_uri,
                         code_challenge_method="S256",
                         token_endpoint_auth_method="client_secret_basic" if secret else "none")


def _redirect_uri(settings: Settings, request: Request) -> str:
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _landing(message: str | None = None) -> RedirectResponse:
    target = "/" if message is None else "/#" + urllib.parse.urlencode({"sso-error": message})
    resp = RedirectResponse(target, status_code=303)
    resp.delete_cookie(STATE_COOKIE, path="/api/auth/oidc")
    return resp


class Providers(BaseModel):
    """What the sign-in page offers besides the password form."""

    oidc: bool
    oidc_label: str | None = None
    oidc_login_url: str | None = None


@router.get("/providers", response_model=Providers,
            dependencies=[Depends(auth.public("the sign-in page asks which ways to sign in exist"))])
def providers(services: ServicesDep) -> Providers:
    settings = services.settings
    if not enabled(settings):
        return Providers(oidc=False)
    return Providers(oidc=True, oidc_label=settings.oidc_button_label, oidc_login_url="/api/auth/oidc/login")


@router.get("/oidc/login", dependencies=[Depends(auth.public("starts single sign-on at the provider"))])
def oidc_login(request: Request, services: ServicesDep) -> RedirectResponse:
    """To the provider's authorization endpoint, with state, nonce and a PKCE challenge."""
    settings = services.settings
    if not enabled(settings):
        raise ConfigError("single sign-on is not configured (oidc_issuer, oidc_client_id)")
    try:
        meta, _ = provider(settings)
    except IdentityProviderError as exc:
        log.error("single sign-on cannot start: %s", exc)
        return _landing("single sign-on is unavailable; try again later")
    redirect_uri = _redirect_uri(settings, request)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    url, _ = _client(settings, redirect_uri).create_authorization_url(
        meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce)
    sealed = _fernet(settings).encrypt(json.dumps({"state": state, "nonce": nonce, "verifier": verifier,
                                                    "redirect_uri": redirect_uri}).encode()).decode()
    resp = RedirectResponse(url, status_code=303)
    # Lax: the provider sends the browser back with a top-level GET from its own site, which a strict
    # cookie would not ride. Path-scoped to the two routes that use it.
    resp.set_cookie(STATE_COOKIE, sealed, max_age=STATE_SECONDS, httponly=True, samesite="lax",
                    secure=request.url.scheme == "https", path="/api/auth/oidc")
    return resp


def _id_token_claims(settings: Settings, id_token: str, nonce: str) -> dict:
    meta, keys = provider(settings)
    try:
        try:
            token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256"])
        except JoseError:
            _, keys = provider(settings, refresh=True)  # the provider may have rotated its key
            token = jwt.decode(id_token, keys, algorithms=["RS256", "ES256", "PS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": settings.oidc_client_id},
            sub={"essential": True}, exp={"essential": True},
            nonce={"essential": True, "value": nonce}, leeway=60,
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise AuthError(f"the provider's ID token is not valid: {exc}") from exc
    return token.claims


def _identity(settings: Settings, claims: dict, access_token: str | None) -> tuple[str, list[str]]:
    if settings.oidc_groups_claim not in claims and access_token:
        # Some providers put groups only in the userinfo answer.
        meta, _ = provider(settings)
        if meta.get("userinfo_endpoint"):
            try:
                resp = requests.get(meta["userinfo_endpoint"], timeout=settings.oidc_timeout_seconds,
                                    headers={"Authorization": f"Bearer {access_token}"})
                resp.raise_for_status()
                info = resp.json()
            except (requests.RequestException, ValueError) as exc:
                raise IdentityProviderError(f"the provider's userinfo failed: {exc}") from exc
            if info.get("sub") == claims.get("sub"):
                claims = {**info, **claims}
    username = claims.get(settings.oidc_username_claim)
    if not isinstance(username, str) or not 0 < len(username) <= 64:
        raise AuthError(f"the provider's ID token has no usable {settings.oidc_username_claim!r} claim")
    groups = claims.get(settings.oidc_groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    return username, [str(g) for g in groups]


@router.get("/oidc/callback", name="oidc_callback",
            dependencies=[Depends(auth.public("the provider's redirect, checked against the state cookie"))])
def oidc_callback(request: Request, services: ServicesDep) -> RedirectResponse:
    """Redeem the code, check the ID token, map the groups to a role, sign in, land on the start page."""
    db, settings = services.db, services.settings
    addr = auth.client_addr(request)
    params = request.query_params
    try:
        if not enabled(settings):
            raise ConfigError("single sign-on is not configured")
        try:
            pending = json.loads(_fernet(settings).decrypt(request.cookies.get(STATE_COOKIE, "").encode(),
                                                           ttl=STATE_SECONDS))
        except (InvalidToken, ValueError) as exc:
            raise AuthError("the single sign-on took too long or was started in another browser; "
                            "start it again") from exc
        if not secrets.compare_digest(params.get("state", ""), pending["state"]):
            raise AuthError("the provider's answer does not belong to this sign-on; start it again")
        if params.get("error"):
            raise AuthError(f"the provider refused: {params.get('error_description') or params['error']}")
        meta, _ = provider(settings)
        try:
            token = _client(settings, pending["redirect_uri"]).fetch_token(
                meta["token_endpoint"], code=params.get("code", ""), code_verifier=pending["verifier"],
                timeout=settings.oidc_timeout_seconds)
        except OAuth2Error as exc:
            raise AuthError(f"the provider did not accept the sign-on code: {exc.description or exc.error}") from exc
        except requests.RequestException as exc:
            raise IdentityProviderError(f"the provider's token endpoint failed: {exc}") from exc
        if "id_token" not in token:
            raise IdentityProviderError("the provider answered without an ID token (is `openid` in oidc_scopes?)")
        claims = _id_token_claims(settings, token["id_token"], pending["nonce"])
        username, groups = _identity(settings, claims, token.get("access_token"))
        role = next((r for g, r in settings.oidc_group_roles.items() if g in groups), None)
        if role is None:
            existing = external_users.find(db, username)
            if existing is not None and existing.source == external_users.OIDC:
                external_users.end_sign_ins(db, existing.id)
            raise ForbiddenError(f"the sign-on account {username!r} is in no group that has access here; "
                                 "ask an administrator to add you to one")
        user = external_users.provision_external_user(db, username, source=external_users.OIDC, role=role,
                                                      groups=groups)
    except GuiRecorderError as exc:
        if exc.http_status >= 500:
            log.error("single sign-on failed: %s", exc)
        audit.record_event(db, None, "auth.sso_failed", None, addr, {"reason": str(exc)})
        return _landing(str(exc) if exc.http_status < 500 else "single sign-on is unavailable; try again later")
    resp = _landing()
    auth.finish_sign_in(db, settings, user, request, resp, "auth.login", {"via": "oidc", "groups": groups})
    return resp
