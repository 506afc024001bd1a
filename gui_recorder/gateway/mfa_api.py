"""The second factor after enrolment: new recovery codes for their owner, a reset by an administrator
for a user who lost both their authenticator and their recovery codes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from gui_recorder.db import User
from gui_recorder.errors import AuthError, NotFoundError
from gui_recorder.gateway import audit, totp
from gui_recorder.gateway.auth import client_addr, require_capability, signed_in
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.vocabulary import Capability

router = APIRouter(prefix="/api/admin/users", tags=["admin"])
own = APIRouter(prefix="/api/auth/mfa", tags=["auth"])


class CurrentCode(BaseModel):
    code: str = Field(min_length=1, max_length=32, description="the 6 digits the authenticator shows now")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


@own.post("/recovery-codes", response_model=RecoveryCodes)
def new_recovery_codes(body: CurrentCode, request: Request, services: ServicesDep,
                       user: User = Depends(signed_in)) -> RecoveryCodes:
    """New recovery codes for the signed-in account (the old ones stop working), for a current code.
    Throttled with the sign-ins: a wrong code counts as a failed one."""
    db, throttle, addr = services.db, services.login_throttle, client_addr(request)
    throttle.begin(user.username, addr)
    try:
        codes = totp.new_recovery_codes(db, services.settings, user, body.code)
    except AuthError:
        throttle.failed(user.username, addr)
        audit.record_event(db, user.username, "auth.mfa_failed", None, addr, {"for": "recovery_codes"})
        raise
    except BaseException:
        throttle.abandoned(user.username, addr)
        raise
    throttle.succeeded(user.username, addr)
    audit.record_event(db, user.username, "user.recovery_codes_renewed", user.username, addr, {})
    return RecoveryCodes(recovery_codes=codes)


@router.delete("/{username}/mfa", status_code=204)
def reset_second_factor(username: str, request: Request, services: ServicesDep,
                        admin: User = Depends(require_capability(Capability.USER_ADMIN))) -> Response:
    """Forget the user's TOTP secret and recovery codes: they enrol again at their next sign-in."""
    db = services.db
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no account is named {username!r}")
    had = totp.reset(db, user.id)
    audit.record_event(db, admin.username, "user.mfa_reset", username, client_addr(request), {"had_mfa": had})
    return Response(status_code=204)
