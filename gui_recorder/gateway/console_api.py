"""The admin console's two views of the running gateway: a connection's test-connect, and the settings.

Test-connect does what a session does up to the target's first frame: the
guacd handshake with the stored (sealed) credentials, then guacd's answer:
the first ``sync`` (the target let us in and drew) or guacd's ``error`` with
its status (519: the target refused the credentials, 0x0207: not reachable).
Nothing is relayed, no input is sent and nothing is recorded; it is audited.

The settings are shown read-only, secrets as "set"/"not set" only, and the
database URL without its password.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

from gui_recorder.db import User
from gui_recorder.errors import GuacdError
from gui_recorder.gateway import audit, connections
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.filter import ClientPolicy
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.guacd import ClientInfo, open_guacd
from gui_recorder.guacd.client import guacd_error
from gui_recorder.guacd.status import Status, describe
from gui_recorder.settings import settings_table
from gui_recorder.vocabulary import Capability

router = APIRouter(prefix="/api/admin", tags=["admin"])
CONNECTION_ADMIN = require_capability(Capability.CONNECTION_ADMIN)
OPS_READ = require_capability(Capability.OPS_READ)


class TestResult(BaseModel):
    ok: bool
    status: int  # the Guacamole status guacd answered with (0 when the target drew its first frame)
    status_text: str
    message: str
    guacd_connection_id: str | None
    seconds: float


async def _first_answer(guacd, timeout: float) -> tuple[int, str]:
    """guacd's verdict after ``ready``: the first ``sync`` is success, an ``error`` is its status."""
    async def wait() -> tuple[int, str]:
        while True:
            batch = await guacd.read()
            if not batch:
                return Status.UPSTREAM_ERROR, "guacd closed the connection before the target answered"
            for ins in batch:
                if ins[0] == "error":
                    exc = guacd_error(ins)
                    return exc.status, str(exc)
                if ins[0] == "sync":
                    return Status.SUCCESS, "The target accepted the connection and drew its first frame."

    try:
        return await asyncio.wait_for(wait(), timeout)
    except asyncio.TimeoutError:
        return Status.UPSTREAM_TIMEOUT, f"the target did not answer within {timeout:.0f} s"


@router.post("/connections/{connection_id}/test", response_model=TestResult)
async def test_connection(request: Request, services: ServicesDep, connection_id: str = Path(max_length=64),
                          admin: User = Depends(CONNECTION_ADMIN)) -> TestResult:
    """A real guacd handshake with the stored credentials; guacd's status, nothing relayed or recorded."""
    # async: the handshake awaits guacd; the database reads run in a thread.
    settings = services.settings
    row = await asyncio.to_thread(connections.get_connection, services.db, connection_id)
    policy = ClientPolicy.from_recording_policy(dict(row.recording_policy or {}))
    definition = connections.definition_for(row, settings, policy)
    started = time.monotonic()
    guacd_id = None
    try:
        guacd = await open_guacd(settings.guacd_host, settings.guacd_port, definition, ClientInfo(),
                                 timeout=settings.guacd_timeout_seconds)
    except GuacdError as exc:
        status, message = exc.status, str(exc)
    else:
        guacd_id = guacd.connection_id
        try:
            status, message = await _first_answer(guacd, settings.guacd_timeout_seconds)
            try:
                await guacd.send(("disconnect",))
            except OSError:
                pass
        finally:
            await guacd.close()
    result = TestResult(ok=status == Status.SUCCESS, status=int(status),
                        status_text="success" if status == Status.SUCCESS else describe(status),
                        message=message, guacd_connection_id=guacd_id, seconds=round(time.monotonic() - started, 3))
    await asyncio.to_thread(audit.record_event, services.db, admin.username, "connection.test", connection_id,
                            client_addr(request), {"ok": result.ok, "status": result.status})
    return result


class SettingOut(BaseModel):
    variable: str
    value: str
    default: str
    description: str


def _shown(name: str, value) -> str:
    if isinstance(value, SecretStr):
        return "(set)"
    if value is None:
        return "(not set)"
    if name == "database_url":
        return make_url(value).render_as_string(hide_password=True)
    if isinstance(value, list):  # tiers: their names, buckets and ages; keys and secrets never
        return "; ".join(", ".join(f"{k}={v}" for k, v in vars(item).items()
                                   if v is not None and not isinstance(v, SecretStr) and "key" not in k)
                         for item in value)
    return str(value)


@router.get("/settings", response_model=list[SettingOut])
def runtime_settings(services: ServicesDep, user: User = Depends(OPS_READ)) -> list[SettingOut]:
    """The settings this gateway runs with, read-only; secrets only as set or not."""
    settings = services.settings
    return [SettingOut(variable=row["variable"], value=_shown(row["name"], getattr(settings, row["name"])),
                       default=row["default"], description=row["description"]) for row in settings_table()]
