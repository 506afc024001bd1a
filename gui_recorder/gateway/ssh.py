"""What an SSH session adds at the tunnel: the pinned host key and guacd's typescript, recorded.

Both are decided here, before guacd is reached: the host key is checked and
pinned (``host_keys``), and guacd is told to write the terminal's output to a
typescript named after the session, which the recorder reads into the
recording as it goes (``recording/typescript.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from gui_recorder.db import Connection
from gui_recorder.gateway import host_keys
from gui_recorder.gateway.services import Services
from gui_recorder.guacd import ConnectionDefinition
from gui_recorder.recording import SessionRecorder
from gui_recorder.recording.typescript import TypescriptTail


async def prepare(services: Services, connection: Connection, definition: ConnectionDefinition,
                  session_id: str, recorder: SessionRecorder, username: str,
                  client_addr: str | None) -> tuple[ConnectionDefinition, TypescriptTail | None]:
    """guacd's parameters for an SSH session and the typescript being read (None for other protocols).

    Raises ``HostKeyError`` when the server's key is not the pinned one (or none can be read).
    """
    if connection.protocol != "ssh":
        return definition, None
    settings = services.settings
    definition = await asyncio.to_thread(host_keys.pin, services.db, settings, connection, definition, username,
                                         client_addr)
    if not settings.record_typescripts:
        return definition, None
    directory = settings.resolved_typescript_dir
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tail = TypescriptTail(directory / session_id)
    recorder.attach_terminal(tail)
    params = {**definition.parameters, "typescript-path": str(directory), "typescript-name": session_id,
              "create-typescript-path": "true"}
    return replace(definition, parameters=params), tail


def sweep_typescripts(settings) -> int:
    """At start-up: delete typescripts a gateway that died left behind (one gateway per database, so
    none belongs to a running session). Their output up to the gateway's last batch is in the
    recordings; a plaintext copy must not stay beside them. Returns how many files were deleted."""
    directory = settings.resolved_typescript_dir
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
