"""The dev stack's demo data: accounts (one per role) and its demo connections (VNC, RDP, SSH), through the gateway's domain."""

from __future__ import annotations

from gui_recorder.db import Database
from gui_recorder.gateway.accounts import ensure_user
from gui_recorder.gateway.connections import ConnectionIn, ensure_connection
from gui_recorder.settings import Settings
from gui_recorder.stack.supervisor import StackInfo

# Operators and vendors may open both demo desktops; admins and auditors see all sessions.
DEMO_OPENERS = ["operator", "vendor"]


def seed_demo(settings: Settings, info: StackInfo, accounts: dict[str, str]) -> list[dict]:
    """Idempotent: re-run at each start, since the targets' ports and passwords change."""
    db = Database(settings)
    try:
        db.create_all()
        for role, password in accounts.items():
            ensure_user(db, role, password, role)
        specs = []
        if info.vnc:
            specs.append(ConnectionIn(id="demo-vnc", name="Demo VNC desktop", protocol="vnc", host=info.vnc.host,
                                      port=info.vnc.port, password=info.vnc.password, allowed_roles=DEMO_OPENERS))
        if info.rdp:
            specs.append(ConnectionIn(
                id="demo-rdp", name="Demo RDP desktop", protocol="rdp", host=info.rdp.host, port=info.rdp.port,
                username=info.rdp.username, password=info.rdp.password, allowed_roles=DEMO_OPENERS,
                parameters={"security": "nla", "ignore-cert": "true"},
                # freerdp-shadow drops the session on clipboard data (seen with guacd 1.3).
                recording_policy={"allow_clipboard": False}))
        if info.ssh:
            # By key (sealed like every credential); the host key is pinned at the first session.
            specs.append(ConnectionIn(
                id="demo-ssh", name="Demo SSH server", protocol="ssh", host=info.ssh.host, port=info.ssh.port,
                username=info.ssh.username, secret_parameters={"private-key": info.ssh.private_key},
                allowed_roles=DEMO_OPENERS))
        for spec in specs:
            ensure_connection(db, settings, spec)
        return [{"id": s.id, "name": s.name, "protocol": s.protocol} for s in specs]
    finally:
        db.dispose()
