"""An administrator's help for a user who lost their authenticator and their recovery codes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from gui_recorder.db import User
from gui_recorder.errors import NotFoundError
from gui_recorder.gateway import audit, totp
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.vocabulary import Capability

router = APIRouter(prefix="/api/admin/users", tags=["admin"])


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
