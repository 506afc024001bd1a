"""Whole sessions, scripted: through the gateway (``drive_session``) or recorded by guacd itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from support.clients import GuacdClient, TunnelClient


async def drive_session(gateway, connection_id: str, text: str = "", seconds: float = 3.0,
                        role: str = "vendor") -> str:
    """A scripted browser: open the tunnel, echo frames, type ``text``, leave after ``seconds``.

    ``gateway`` is conftest's running gateway. Returns the session id once its
    recording is complete in MinIO.
    """
    with gateway.api(role) as api:
        token = api.post(f"/api/connections/{connection_id}/tunnel-token").raise_for_status().json()["token"]
    client = await TunnelClient.open(gateway.url, token)
    try:
        # The desktop on screen first, as a person would wait for it: on a loaded machine guacd's first
        # frame can take longer than any fixed pause (a session left before it is a true "never answered").
        await client.first_frame()
        await asyncio.sleep(1.0)  # and the rest of its first picture
        await client.type(text)
        await asyncio.sleep(seconds)
    finally:
        await client.disconnect()
    with gateway.api("admin") as admin:
        deadline = time.monotonic() + 60
        while not admin.get(f"/api/sessions/{client.session_id}").json().get("recording_complete"):
            assert time.monotonic() < deadline, "the recording did not complete"
            await asyncio.sleep(0.2)
    return client.session_id


def guacd_recording_parameters(target, directory: Path, name: str) -> dict[str, str]:
    """guacd's parameters for ``target`` (a demo desktop) with guacd writing the recording itself."""
    return {**target.guacd_parameters(), "recording-path": str(directory), "recording-name": name,
            "create-recording-path": "true", "recording-include-keys": "true"}


async def open_recorded(stack, directory: Path, name: str, protocol: str = "vnc") -> GuacdClient:
    """A client of real guacd on a demo desktop, guacd recording to ``directory / name``."""
    from gui_recorder.guacd import ClientInfo, ConnectionDefinition, open_guacd

    target = getattr(stack, protocol)
    conn = await open_guacd(stack.guacd.host, stack.guacd.port,
                            ConnectionDefinition(protocol, guacd_recording_parameters(target, directory, name)),
                            ClientInfo(1024, 768))
    return GuacdClient(conn)


async def wait_written(path: Path, timeout: float = 30) -> Path:
    """guacd finishes writing when its connection is torn down: wait for the size to settle."""
    size, stable = -1, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else -1
        stable = stable + 1 if now == size and now > 0 else 0
        if stable >= 15:
            break
        size = now
        await asyncio.sleep(0.1)
    return path


async def record_with_guacd(stack, directory: Path, name: str, text: str = "", seconds: float = 3.0,
                            protocol: str = "vnc") -> Path:
    """A recording written by real guacd itself (`recording-path`), as Guacamole deployments have."""
    client = await open_recorded(stack, directory, name, protocol)
    try:
        await asyncio.sleep(1.0)
        await client.type(text)
        await asyncio.sleep(seconds)
    finally:
        await client.close()
    return await wait_written(directory / name)


def found_on_screen(api, word: str, session_id: str) -> bool:
    """Search (source `screen`) through ``api`` finds ``word`` in the session ``session_id``."""
    results = api.get("/api/search", params={"q": word, "source": "screen"}).json()["results"]
    return any(r["session_id"] == session_id for r in results)
