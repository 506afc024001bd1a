"""Several guacd daemons: a new session goes to one that answers.

Sessions are spread round-robin. A guacd that cannot be reached (no TCP
connection within the connect timeout) is skipped, for this session and, for a
short while, for the next ones, so a dead daemon costs one connect timeout once,
not on every session. A guacd whose TLS certificate does not verify is passed
over the same way (and logged as a security event). Only that moves a session to
another guacd: once one has answered, its verdict (a refused target, bad
credentials) is final, since another guacd would reach the same target the same way.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import time
from dataclasses import dataclass, field

from gui_recorder.errors import GuacdUnreachable, GuacdUntrusted
from gui_recorder.guacd.client import GuacdConnection, open_guacd
from gui_recorder.guacd.definition import ClientInfo, ConnectionDefinition

Address = tuple[str, int]  # settings.guacd_pool gives them, parsed and checked
security_log = logging.getLogger("gui_recorder.security")


@dataclass
class GuacdPool:
    addresses: list[Address]
    connect_timeout: float = 3.0
    handshake_timeout: float = 15.0
    down_seconds: float = 30.0  # how long an unreachable guacd is passed over before it is tried again
    tls: ssl.SSLContext | None = None  # settings.guacd_tls: verify each guacd's certificate
    server_name: str | None = None  # the name their certificates carry, when not their address
    _turn: itertools.count = field(default_factory=itertools.count)
    _down_until: dict[Address, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError("a guacd pool needs at least one address")

    def _order(self) -> list[Address]:
        start = next(self._turn) % len(self.addresses)
        ring = self.addresses[start:] + self.addresses[:start]
        now = time.monotonic()
        # Down ones last, not never: if every guacd was down a moment ago, one may be back.
        return sorted(ring, key=lambda a: self._down_until.get(a, 0) > now)

    def is_down(self, address: Address) -> bool:
        return self._down_until.get(address, 0) > time.monotonic()

    async def open(self, definition: ConnectionDefinition, client: ClientInfo) -> GuacdConnection:
        """A handshaken connection on the first guacd that answers; ``GuacdUnreachable`` naming all if none."""
        failures = []
        for address in self._order():
            try:
                conn = await open_guacd(*address, definition, client, timeout=self.handshake_timeout,
                                        connect_timeout=self.connect_timeout, tls=self.tls,
                                        server_name=self.server_name)
            except GuacdUnreachable as exc:
                if isinstance(exc, GuacdUntrusted):
                    security_log.warning("%s", exc)
                self._down_until[address] = time.monotonic() + self.down_seconds
                failures.append(exc)
                continue
            self._down_until.pop(address, None)
            return conn
        why = "; ".join(exc.reason for exc in failures)
        if all(isinstance(exc, GuacdUntrusted) for exc in failures):
            raise GuacdUntrusted(f"no guacd could be trusted: {why}")
        raise GuacdUnreachable(f"no guacd could be reached: {why}")

    async def join(self, address: Address, connection_id: str, client: ClientInfo, *,
                   read_only: bool = True) -> GuacdConnection:
        """Join a running connection, on the guacd that carries it (only that one knows it)."""
        return await open_guacd(*address, None, client, join=connection_id, read_only=read_only,
                                timeout=self.handshake_timeout, connect_timeout=self.connect_timeout,
                                tls=self.tls, server_name=self.server_name)
