"""SSH host-key pinning: the first key seen is recorded on the connection, a changed one is refused.

guacd checks the key itself when given its ``host-key`` parameter (a
known_hosts line; guacd 1.2+ ``common-ssh/key.c``), but it neither reports the
key it saw nor tells "changed" from "never pinned" in a way a user can act on.
So before each SSH session the gateway reads the server's key
(``ssh-keyscan``, the key type guacd's libssh2 negotiates) and:

- no pin yet (first use): records it in the connection's ``host-key``
  parameter (visible to admins, audited as ``connection.host_key_recorded``);
- a pin that differs: refuses with ``HostKeyError`` naming both fingerprints;
- then hands guacd the pin, so guacd's own check holds even if the key changed
  between our look and its connection.

An admin accepts a re-keyed server by giving the new line as ``host-key``, or
``""`` to pin again at the next use; moving the connection to another host or
port drops the pin (``connections.ensure_connection``).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import replace

from gui_recorder.db import Connection, Database
from gui_recorder.errors import HostKeyError
from gui_recorder.gateway import audit
from gui_recorder.guacd import ConnectionDefinition
from gui_recorder.settings import Settings

PARAMETER = "host-key"
MAX_LINE = 16384


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(line: str) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a known_hosts line's key."""
    try:
        blob = base64.b64decode(line.split()[2], validate=True)
    except (IndexError, ValueError):
        return "(unreadable key)"
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _key(line: str) -> tuple[str, ...]:
    parts = line.split()
    return tuple(parts[1:3])


def scan(host: str, port: int, key_type: str, timeout_s: float) -> str:
    """The server's host key as a known_hosts line; ``HostKeyError`` if it cannot be read."""
    try:
        out = subprocess.run(["ssh-keyscan", "-t", key_type, "-T", str(max(1, int(timeout_s))), "-p", str(port),
                              host], capture_output=True, text=True, timeout=timeout_s + 5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostKeyError(f"cannot read the host key of {host}:{port} to check it: {exc}") from exc
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#") and len(line) <= MAX_LINE:
            return f"{known_hosts_name(host, port)} {parts[1]} {parts[2]}"
    raise HostKeyError(f"the SSH server {host}:{port} offered no {key_type} host key (or did not answer), so "
                       "its identity cannot be checked; the session is not opened")


def pin(db: Database, settings: Settings, connection: Connection, definition: ConnectionDefinition,
        username: str, client_addr: str | None) -> ConnectionDefinition:
    """``definition`` with the pinned ``host-key``; records the key at first use. Blocking (a thread)."""
    if connection.protocol != "ssh":
        return definition
    seen = scan(connection.host, connection.port, settings.ssh_host_key_type, settings.guacd_timeout_seconds)
    pinned = (connection.parameters or {}).get(PARAMETER, "").strip()
    if not pinned:
        _record(db, connection.id, seen)
        audit.record_event(db, username, "connection.host_key_recorded", connection.id, client_addr,
                           {"connection": connection.id, "fingerprint": fingerprint(seen)})
        pinned = seen
    elif _key(pinned) != _key(seen):
        raise HostKeyError(
            f"the SSH server {connection.host}:{connection.port} presents host key {fingerprint(seen)}, not "
            f"{fingerprint(pinned)} pinned for connection {connection.id!r}: it may be impersonated, so the session "
            "is refused. If the server was re-keyed on purpose, an admin sets the connection's host-key parameter "
            "to the new key (or to an empty string to pin again at the next session).")
    # guacd matches the name in the line against hostname and port: always write it ours.
    line = f"{known_hosts_name(connection.host, connection.port)} {' '.join(_key(pinned))}"
    return replace(definition, parameters={**definition.parameters, PARAMETER: line})


def _record(db: Database, connection_id: str, line: str) -> None:
    with db.session() as s:
        row = s.get(Connection, connection_id)
        if row is not None and not (row.parameters or {}).get(PARAMETER):
            row.parameters = {**(row.parameters or {}), PARAMETER: line}
