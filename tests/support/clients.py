"""Scripted Guacamole clients: each echoes every ``sync`` as guacamole-common-js does.

guacd paces its frames on the client's ``sync`` answers, so a client that does not
echo them stalls the session. ``TunnelClient`` is a browser on the gateway's
WebSocket tunnel; ``GuacdClient`` talks to guacd directly (recordings made by
guacd itself). Both read in a background task and keep what they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import websockets

from gui_recorder.protocol import Instruction, Parser, encode
from support.keys import keystroke, tap

TYPING_PAUSE_S = 0.03  # between characters: a fast typist, and guacd keeps the order


def tunnel_url(base: str, token: str, width: int = 1024, height: int = 768, dpi: int = 96,
               path: str = "api/tunnel") -> str:
    """The gateway's tunnel URL for a one-time ``token``; ``base`` is the gateway's http(s) URL
    (``path="api/watch"`` for a watcher's tunnel, with a watch token)."""
    return base.replace("http", "ws", 1) + f"{path}?token={token}&width={width}&height={height}&dpi={dpi}"


class TunnelClient:
    """A scripted browser on the gateway's tunnel.

    ``session_id`` is the tunnel's first message (the session's UUID); ``seen`` keeps
    every instruction received when ``keep`` is set; ``synced`` is set at each ``sync``;
    ``error`` is the last ``error`` instruction; ``closed_at`` is the wall-clock time the
    connection ended.
    """

    def __init__(self, ws, keep: bool = False):
        self.ws = ws
        self.parser = Parser()
        self.keep = keep
        self.seen: list = []
        self.synced = asyncio.Event()
        self.error: Instruction | None = None
        self.closed_at: float | None = None
        self.session_id: str | None = None
        self.opcodes: dict[str, int] = {}  # what arrived, by opcode: says where a stalled handshake stopped
        self._task: asyncio.Task | None = None

    @classmethod
    async def open(cls, base: str, token: str, *, keep: bool = False, timeout: float = 30,
                   **size) -> "TunnelClient":
        ws = await websockets.connect(tunnel_url(base, token, **size), subprotocols=["guacamole"], max_size=None,
                                      open_timeout=timeout)
        self = cls(ws, keep)
        try:
            first = self.parser.feed_text(await asyncio.wait_for(ws.recv(), timeout))[0]
            if first[0] == "error":  # refused before a session began (e.g. no guacd could be trusted)
                self.error = first
            else:
                self.session_id = first[1]
        except BaseException:
            await ws.close()
            raise
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aenter__(self) -> "TunnelClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _pump(self) -> None:
        try:
            async for message in self.ws:
                for ins in self.parser.feed_text(message):
                    self.opcodes[ins[0]] = self.opcodes.get(ins[0], 0) + 1
                    if self.keep:
                        self.seen.append(ins)
                    if ins[0] == "error":
                        self.error = ins
                    elif ins[0] == "sync":
                        self.synced.set()
                        await self.ws.send(encode(("sync", ins[1])))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_at = time.time()

    async def first_frame(self, timeout: float = 60) -> None:
        """Wait for guacd's first ``sync`` (the desktop is on screen), or fail with guacd's refusal."""
        synced = asyncio.ensure_future(self.synced.wait())
        try:
            await asyncio.wait({synced, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
        assert self.error is None, f"guacd refused the session: {list(self.error)}"
        assert self.synced.is_set(), (f"no frame from guacd within {timeout:g} s (received {self.opcodes or 'nothing'}, "
                                      f"tunnel {'closed' if self._task.done() else 'open'})")

    async def type(self, text: str, pause: float = TYPING_PAUSE_S) -> None:
        for ch in text:
            await self.ws.send(keystroke(ch))
            await asyncio.sleep(pause)

    async def disconnect(self) -> None:
        """Leave as the browser does: a ``disconnect`` instruction, then the close."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(encode(("disconnect",)))
        await self.close()

    async def wait_closed(self, timeout: float = 30) -> None:
        await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def close(self) -> None:
        await self.ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._task, 10)


class GuacdClient:
    """A client of guacd itself, on a connection from ``open_guacd``.

    ``last_sync`` is guacd's latest ``sync`` timestamp (the recording's clock);
    an ``error`` from guacd ends the reading and is kept in ``error``.
    """

    def __init__(self, conn):
        self.conn = conn
        self.last_sync: int | None = None
        self.error: Instruction | None = None
        self.synced = asyncio.Event()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        while batch := await self.conn.read():
            for ins in batch:
                if ins[0] == "sync":
                    self.last_sync = int(ins[1])
                    await self.conn.send(Instruction("sync", ins[1]))
                    self.synced.set()
                elif ins[0] == "error":
                    self.error = ins
                    return

    async def next_sync(self, timeout: float = 10) -> int:
        """Wait for guacd's next ``sync``; its timestamp."""
        self.synced.clear()
        await asyncio.wait_for(self.synced.wait(), timeout)
        return self.last_sync

    async def tap(self, keysym: int, pause: float = TYPING_PAUSE_S) -> None:
        await self.conn.send_raw(tap(keysym).encode())
        await asyncio.sleep(pause)

    async def type(self, text: str, pause: float = TYPING_PAUSE_S) -> None:
        for ch in text:
            await self.conn.send_raw(keystroke(ch).encode())
            await asyncio.sleep(pause)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.conn.close()
