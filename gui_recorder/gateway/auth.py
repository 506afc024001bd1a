"""Sign-in (`/api/auth/*`) and the dependencies that guard every other route.

Every route declares what it needs with exactly one of these, so that
``tests/test_route_matrix.py`` can read the declaration from ``app.routes``
and check it against ``ROLE_CAPABILITIES`` for every role:

- ``require_capability(Capability.X)``: a signed-in user whose role holds X
  (403 otherwise; 401 without a valid sign-in);
- ``signed_in``: any signed-in user, whatever the role (who am I);
- ``public("why")``: no sign-in: the sign-in itself, health, or a route that
  checks its own credential (one-time tunnel and watch tokens).

Routes that read a session's data take ``gateway.access`` dependencies, which
are built on ``require_capability`` and add the visibility check and the audit.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from gui_recorder.db import User
from gui_recorder.errors import AuthError, ForbiddenError
from gui_recorder.gateway import accounts, audit, external_users, ldap_auth, tokens, totp
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.vocabulary import Capability, capabilities_of

router = APIRouter(prefix="/api/auth", tags=["auth"])


class Credentials(BaseModel):
    # Bounded: argon2 would otherwise hash a megabyte password on anyone's request. Not the
    # password policy (that applies where passwords are set): an old account must still sign in.
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResult(BaseModel):
    # No token while a second factor is due (``mfa``): then ``ticket`` goes to POST /api/auth/mfa.
    token: str | None = None
    username: str
    role: str
    mfa: str | None = Field(None, description="'enroll' or 'verify' when a TOTP code must follow")
    ticket: str | None = None
    otpauth_uri: str | None = Field(None, description="enrolment: the new secret for an authenticator app")
    qr_svg: str | None = Field(None, description="enrolment: otpauth_uri as a QR code (an SVG data: URI)")
    recovery_codes: list[str] | None = Field(None, description="enrolment: single-use codes, shown this once")


class SecondFactor(BaseModel):
    ticket: str = Field(min_length=1, max_length=2048)
    code: str = Field(min_length=1, max_length=32, description="6 digits, or a recovery code")


class Me(BaseModel):
    username: str
    role: str
    # The pages build their navigation and buttons from these, never from role names.
    capabilities: list[str]


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(tokens.COOKIE_NAME)


def current_user(request: Request, services: ServicesDep) -> User:
    # Plain def: a database read, which FastAPI runs in its thread pool (once per request: it caches it).
    return tokens.user_for_token(services.db, _presented_token(request))


def require_capability(capability: Capability):
    """The dependency of a route that needs ``capability``; it resolves to the signed-in user."""
    capability = Capability(capability)

    async def check(user: User = Depends(current_user)) -> User:
        if capability not in capabilities_of(user.role):
            raise ForbiddenError(f"this needs the capability {capability.value!r}, which the role "
                                 f"{user.role!r} does not have; ask an administrator for a role that has it")
        return user

    check.capability = capability  # read by the route matrix test
    check.__name__ = f"require_{capability.name.lower()}"
    return check


async def signed_in(user: User = Depends(current_user)) -> User:
    """Explicitly any signed-in user, whatever the role: for what every account may do about itself."""
    return user


def public(reason: str):
    """Marks a route as needing no sign-in, and says why (the matrix test requires the marker)."""

    async def no_sign_in() -> None:
        return None

    no_sign_in.public_reason = reason
    return no_sign_in


@router.post("/login", response_model=LoginResult, dependencies=[Depends(public("the sign-in itself"))])
def login(body: Credentials, request: Request, response: Response, services: ServicesDep) -> LoginResult:
    """Sign in. Throttled per account and per address (``throttle``): a locked one is answered 429 with
    ``Retry-After`` before the password is looked at, so it costs no argon2 hash and no database."""
    db, settings, throttle = services.db, services.settings, services.login_throttle
    addr = client_addr(request)
    # Raises ThrottledError (429). A lock is logged when it starts (throttle), not on every refused try.
    # The throttle is thread-safe; this route runs in FastAPI's thread pool, where a client that hangs
    # up mid-check cannot cancel it: its try is charged below like any other.
    throttle.begin(body.username, addr)
    try:
        user = _check_password(db, settings, body.username, body.password)
    except AuthError:
        throttle.failed(body.username, addr)
        audit.record_event(db, body.username, "auth.login_failed", None, addr,
                           {"failures": throttle.failures(body.username)})
        raise
    except ForbiddenError as exc:  # the directory's password was right, its groups give no role here
        throttle.abandoned(body.username, addr)
        audit.record_event(db, body.username, "auth.login_refused", None, addr, {"reason": str(exc)})
        raise
    except BaseException:  # no verdict (the directory is down): nothing charged, nothing cleared
        throttle.abandoned(body.username, addr)
        raise
    if totp.required(settings, user):
        # The account's failures stay until the code passes too: a known password is no free pass
        # to guess codes (each wrong code is charged like a wrong password, in ``second_factor``).
        throttle.abandoned(body.username, addr)
        step = totp.challenge(db, settings, user)
        audit.record_event(db, user.username, "auth.password_ok", None, addr, {"mfa": step.step})
        return LoginResult(username=user.username, role=user.role, mfa=step.step, ticket=step.ticket,
                           otpauth_uri=step.otpauth_uri, qr_svg=step.qr_svg)
    throttle.succeeded(body.username, addr)
    return finish_sign_in(db, settings, user, request, response, "auth.login", {})


def finish_sign_in(db, settings, user: User, request: Request, response: Response, action: str,
                   detail: dict) -> LoginResult:
    """The sign-in itself, whichever way the user proved who they are: a token, its cookie, the audit."""
    addr = client_addr(request)
    token = tokens.issue_login_token(db, user, settings.token_ttl_seconds, addr)
    response.set_cookie(tokens.COOKIE_NAME, token, max_age=settings.token_ttl_seconds, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    audit.record_event(db, user.username, action, None, addr, detail)
    return LoginResult(token=token, username=user.username, role=user.role)


@router.post("/mfa", response_model=LoginResult, dependencies=[Depends(public("the sign-in's second step"))])
def second_factor(body: SecondFactor, request: Request, response: Response, services: ServicesDep) -> LoginResult:
    """The TOTP code (or a recovery code) for the ticket a right password gave; the sign-in, and at
    enrolment the recovery codes. Throttled with the passwords: a wrong code is a failed sign-in."""
    db, settings, throttle = services.db, services.settings, services.login_throttle
    addr = client_addr(request)
    ticket = totp.open_ticket(db, settings, body.ticket)  # AuthError before anything is charged: no account yet
    user = _user_by_id(db, ticket.user_id)
    throttle.begin(user.username, addr)
    try:
        passed = totp.verify(db, settings, ticket, body.code)
    except AuthError:
        throttle.failed(user.username, addr)
        audit.record_event(db, user.username, "auth.mfa_failed", None, addr,
                           {"failures": throttle.failures(user.username)})
        raise
    except BaseException:
        throttle.abandoned(user.username, addr)
        raise
    throttle.succeeded(user.username, addr)
    detail = {"mfa": "enrolled" if passed.recovery_codes else "recovery_code" if passed.used_recovery_code
              else "totp"}
    result = finish_sign_in(db, settings, passed.user, request, response, "auth.login", detail)
    return result.model_copy(update={"recovery_codes": passed.recovery_codes})


def _user_by_id(db, user_id: int) -> User:
    with db.session() as s:
        user = s.get(User, user_id)
    if user is None:
        raise AuthError("the account no longer exists")
    return user


def _check_password(db, settings, username: str, password: str) -> User:
    """The password judged where the account lives: here, or the directory for a name that is not a
    local account (a local account is never looked up in the directory: no takeover by name)."""
    if ldap_auth.enabled(settings):
        local = external_users.find(db, username)
        if local is None or local.source == external_users.LDAP:
            return ldap_auth.sign_in(db, settings, username, password)
    return accounts.authenticate(db, username, password)


@router.post("/logout", status_code=204,
             dependencies=[Depends(public("revokes the token presented, if any"))])
def logout(request: Request, response: Response, services: ServicesDep) -> Response:
    token = _presented_token(request)
    if token:
        tokens.revoke_login_token(services.db, token)
    response.delete_cookie(tokens.COOKIE_NAME, path="/")
    response.status_code = 204
    return response


@router.get("/me", response_model=Me)
async def me(user: User = Depends(signed_in)) -> Me:
    return Me(username=user.username, role=user.role,
              capabilities=sorted(c.value for c in capabilities_of(user.role)))
