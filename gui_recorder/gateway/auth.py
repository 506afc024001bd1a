"""Sign-in (`/api/auth/*`) and the dependencies that guard every other route."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from gui_recorder.db import User
from gui_recorder.errors import AuthError, ForbiddenError
from gui_recorder.gateway import accounts, audit, tokens

router = APIRouter(prefix="/api/auth", tags=["auth"])


class Credentials(BaseModel):
    # Bounded: argon2 would otherwise hash a megabyte password on anyone's request.
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResult(BaseModel):
    token: str
    username: str
    role: str


class Me(BaseModel):
    username: str
    role: str


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(tokens.COOKIE_NAME)


async def current_user(request: Request) -> User:
    return await asyncio.to_thread(tokens.user_for_token, request.app.state.db, _presented_token(request))


def require_roles(*roles: str):
    async def check(user: User = Depends(current_user)) -> User:
        if user.role not in roles:
            raise ForbiddenError(f"this needs one of the roles {', '.join(roles)}; you are {user.role}")
        return user

    return check


@router.post("/login", response_model=LoginResult)
async def login(body: Credentials, request: Request, response: Response) -> LoginResult:
    db, settings = request.app.state.db, request.app.state.settings
    try:
        user = await asyncio.to_thread(accounts.authenticate, db, body.username, body.password)
    except AuthError:
        await asyncio.to_thread(audit.record_event, db, body.username, "auth.login_failed", None,
                                client_addr(request), {})
        raise
    token = await asyncio.to_thread(tokens.issue_login_token, db, user, settings.token_ttl_seconds,
                                    client_addr(request))
    response.set_cookie(tokens.COOKIE_NAME, token, max_age=settings.token_ttl_seconds, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    await asyncio.to_thread(audit.record_event, db, user.username, "auth.login", None, client_addr(request), {})
    return LoginResult(token=token, username=user.username, role=user.role)


@router.post("/logout", status_code=204)
async def logout(request: Request, response: Response) -> Response:
    token = _presented_token(request)
    if token:
        await asyncio.to_thread(tokens.revoke_login_token, request.app.state.db, token)
    response.delete_cookie(tokens.COOKIE_NAME, path="/")
    response.status_code = 204
    return response


@router.get("/me", response_model=Me)
async def me(user: User = Depends(current_user)) -> Me:
    return Me(username=user.username, role=user.role)
