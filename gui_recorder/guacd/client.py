"""An asyncio guacd client: the handshake, then whole instructions both ways."""

from __future__ import annotations

import asyncio
import re
import ssl

from gui_recorder.errors import GuacdError, GuacdUnreachable, GuacdUntrusted, ProtocolError
from gui_recorder.guacd.definition import ClientInfo, ConnectionDefinition
from gui_recorder.guacd.status import Status, describe
from gui_recorder.protocol import Instruction, Parser, encode
from gui_recorder import telemetry

# The newest protocol version this client speaks; guacd 1.3.0 announces 1.3.0.
OWN_VERSION = (1, 5, 0)
_VERSION_RE = re.compile(r"^VERSION_(\d+)_(\d+)_(\d+)$")
READ_SIZE = 65536


def _version(text: str) -> tuple[int, int, int] | None:
    m = _VERSION_RE.match(text)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def guacd_error(instruction: Instruction) -> GuacdError:
    """The typed exception for an ``error,message,status`` instruction."""
    message = instruction[1] if len(instruction) > 1 else "guacd reported an error"
    try:
        status = int(instruction[2])
    except (IndexError, ValueError):
        status = Status.SERVER_ERROR
    return GuacdError(f"{message}: {describe(status)}", status)


class GuacdConnection:
    """A connection to guacd after ``ready``.

    ``read`` returns the next batch of whole instructions (or ``[]`` at EOF);
    ``send`` writes whole instructions. Both directions close exactly once.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: Parser,
                 pending: list[Instruction], connection_id: str, version: tuple[int, int, int] | None):
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self._pending = pending
        self.connection_id = connection_id
        self.version = version
        self.address: tuple[str, int] | None = None  # which guacd: a watcher joins on the same one
        self._closed = False

    async def read(self) -> list[Instruction]:
        if self._pending:
            out, self._pending = self._pending, []
            return out
        while True:
            data = await self._reader.read(READ_SIZE)
            if not data:
                return []
            out = self._parser.feed(data)
            if out:
                return out

    async def read_wire(self) -> tuple[list[Instruction], str]:
        """Like ``read``, with the exact text of those instructions (for relaying and teeing)."""
        if self._pending:
            out, self._pending = self._pending, []
            return out, "".join(encode(i) for i in out)
        while True:
            data = await self._reader.read(READ_SIZE)
            if not data:
                return [], ""
            out = self._parser.feed(data)
            if out:
                return out, self._parser.wire

    async def read_until(self, opcode: str, timeout: float = 15.0) -> list[Instruction]:
        """Read until an instruction with ``opcode``; raise on guacd ``error`` or EOF."""
        seen: list[Instruction] = []

        async def run() -> list[Instruction]:
            while True:
                batch = await self.read()
                if not batch:
                    raise GuacdError("guacd closed the connection", Status.UPSTREAM_ERROR)
                for ins in batch:
                    seen.append(ins)
                    if ins[0] == "error":
                        raise guacd_error(ins)
                    if ins[0] == opcode:
                        return seen

        return await asyncio.wait_for(run(), timeout)

    async def send(self, *instructions: Instruction | tuple[str, ...]) -> None:
        self._writer.write("".join(encode(i) for i in instructions).encode())
        await self._writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self, *, disconnect: bool = True) -> None:
        """Say ``disconnect`` (unless told not to: after a recording failure nothing more is sent) and close."""
        if self._closed:
            return
        self._closed = True
        try:
            if disconnect:
                self._writer.write(b"10.disconnect;")
                await asyncio.wait_for(self._writer.drain(), 2)
        except (OSError, asyncio.TimeoutError, RuntimeError):
            pass
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass


async def open_guacd(
    host: str,
    port: int,
    definition: ConnectionDefinition | None,
    client: ClientInfo = ClientInfo(),
    *,
    join: str | None = None,
    read_only: bool = False,
    timeout: float = 15.0,
    connect_timeout: float | None = None,
    tls: ssl.SSLContext | None = None,
    server_name: str | None = None,
) -> GuacdConnection:
    """Connect to guacd and complete the handshake up to ``ready``.

    ``join`` selects a running connection (``$uuid``) instead of a protocol;
    the joiner then sends the owner's parameters minus credentials, plus
    ``read-only`` when asked. Raises ``GuacdError`` with guacd's status, and
    ``GuacdUnreachable`` when no TCP connection was made within ``connect_timeout``
    (default ``timeout``): a pool then tries the next guacd. With ``tls`` (guacd's ``-C``/``-K``)
    the certificate must verify for ``server_name`` (default ``host``) before a byte is sent:
    ``GuacdUntrusted`` otherwise.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls, server_hostname=(server_name or host) if tls else None),
            timeout if connect_timeout is None else connect_timeout)
    except ssl.SSLCertVerificationError as exc:
        raise GuacdUntrusted(f"guacd at {host}:{port} presented a certificate that does not verify "
                             f"({exc.verify_message}): nothing was sent to it") from exc
    except ssl.SSLError as exc:
        raise GuacdUnreachable(f"no TLS with guacd at {host}:{port} ({exc.reason or exc}): is it started "
                               "with -C and -K?") from exc
    except (OSError, asyncio.TimeoutError) as exc:
        raise GuacdUnreachable(f"cannot reach guacd at {host}:{port}: {exc}") from exc
    parser = Parser(keep_wire=True)
    conn = GuacdConnection(reader, writer, parser, [], "", None)
    conn.address = (host, port)
    try:
        with telemetry.span("guacd.handshake", join=bool(join), read_only=read_only,
                            protocol=definition.protocol if definition else None):
            return await asyncio.wait_for(
                _handshake(conn, definition, client, join, read_only), timeout
            )
    except asyncio.TimeoutError as exc:
        await conn.close()
        raise GuacdError(f"guacd at {host}:{port} did not complete the handshake in {timeout:.0f} s",
                         Status.UPSTREAM_TIMEOUT) from exc
    except (GuacdError, ProtocolError, OSError) as exc:
        await conn.close()
        if isinstance(exc, GuacdError):
            raise
        raise GuacdError(f"handshake with guacd failed: {exc}", Status.SERVER_ERROR) from exc


async def _next(conn: GuacdConnection, expected: str) -> Instruction:
    while True:
        batch = await conn.read()
        if not batch:
            raise GuacdError(f"guacd closed the connection while we waited for '{expected}'",
                             Status.UPSTREAM_ERROR)
        ins, rest = batch[0], batch[1:]
        conn._pending = rest + conn._pending
        if ins[0] == "error":
            raise guacd_error(ins)
        if ins[0] == expected:
            return ins
        if ins[0] != "nop":
            raise GuacdError(f"guacd sent '{ins[0]}' where '{expected}' was expected", Status.SERVER_ERROR)


async def _handshake(conn: GuacdConnection, definition: ConnectionDefinition | None, client: ClientInfo,
                     join: str | None, read_only: bool) -> GuacdConnection:
    if join is None and definition is None:
        raise ValueError("either a connection definition or a connection id to join is needed")
    await conn.send(("select", join or definition.protocol))
    args = await _next(conn, "args")
    names = list(args[1:])
    server_version = _version(names[0]) if names else None
    version = min(server_version, OWN_VERSION) if server_version else None
    params = dict(definition.parameters) if definition else {}
    if read_only:
        params["read-only"] = "true"
    values = []
    for name in names:
        if _version(name):
            values.append("VERSION_%d_%d_%d" % version)
        else:
            values.append(params.get(name, ""))
    setup = [
        ("size", str(client.width), str(client.height), str(client.dpi)),
        ("audio", *client.audio),
        ("video", *client.video),
        ("image", *client.image),
        ("timezone", client.timezone),
    ]
    if version and version >= (1, 5, 0):
        setup.append(("name", client.name))
    await conn.send(*setup, ("connect", *values))
    ready = await _next(conn, "ready")
    conn.connection_id = ready[1] if len(ready) > 1 else ""
    conn.version = version
    return conn
