"""The dev stack's demo connections."""

from __future__ import annotations


def seed_demo(settings, info, accounts: dict[str, str]) -> list[dict]:
    return [{"id": "demo-vnc", "name": "Demo VNC desktop", "protocol": "vnc"},
            {"id": "demo-rdp", "name": "Demo RDP desktop", "protocol": "rdp"}]
