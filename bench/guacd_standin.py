"""A guacd STAND-IN for load generation only (never used by functional tests).

It speaks guacd's handshake (select -> args, then size/audio/video/image/
timezone/connect -> ready) and then replays the server-to-client instructions
of a real guacd recording, frame by frame, in a loop, at a chosen speed. For
latency probes, every `key,<n>,1` it receives is answered at once with a
`pong,<n>` instruction, so a load client can time a round trip through
whatever sits between it and this process.

Real guacd cannot be driven at 50 concurrent replayed sessions on a 2-core
machine together with 50 real desktops, which is why this stand-in exists.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gui_recorder.protocol import Parser, encode, parse_all  # noqa: E402

CLIENT_OPCODES = {"key", "mouse", "size", "sync", "nop", "ack", "clipboard", "blob", "end", "touch"}


def load_frames(recording: Path) -> list[tuple[int, bytes]]:
    """The recording's server instructions grouped into frames: (gap_ms_before, wire bytes)."""
    frames, current, last_ts = [], [], None
    for ins in parse_all(recording.read_bytes()):
        if ins[0] in ("key", "mouse") and len(ins) in (4, 5):
            continue  # input that guacd recorded from its client, not server output
        current.append(encode(ins))
        if ins[0] == "sync":
            ts = int(ins[1])
            gap = 0 if last_ts is None else max(0, ts - last_ts)
            last_ts = ts
            frames.append((gap, "".join(current).encode()))
            current = []
    return frames


class StandIn:
    def __init__(self, frames: list[tuple[int, bytes]], speed: float = 1.0):
        self.frames = frames
        self.speed = speed
        self.server: asyncio.base_events.Server | None = None
        self.bytes_sent = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = Parser()
        replay: asyncio.Task | None = None
        try:
            await self._handshake(reader, writer, parser)
            replay = asyncio.create_task(self._replay(writer))
            while data := await reader.read(65536):
                replies = [encode(("pong", ins[1])) for ins in parser.feed(data)
                           if ins[0] == "key" and len(ins) > 2 and ins[2] == "1"]
                if replies:
                    writer.write("".join(replies).encode())
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if replay:
                replay.cancel()
            writer.close()

    async def _handshake(self, reader, writer, parser: Parser) -> None:
        pending: list = []

        async def next_instruction():
            while not pending:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("client left during the handshake")
                pending.extend(parser.feed(data))
            return pending.pop(0)

        select = await next_instruction()
        assert select[0] == "select"
        writer.write(encode(("args", "VERSION_1_3_0", "hostname", "port", "password")).encode())
        await writer.drain()
        while (await next_instruction())[0] != "connect":
            pass
        writer.write(encode(("ready", f"$standin-{uuid.uuid4()}")).encode())
        await writer.drain()

    async def _replay(self, writer: asyncio.StreamWriter) -> None:
        while True:
            for gap_ms, frame in self.frames:
                if gap_ms:
                    await asyncio.sleep(gap_ms / 1000 / self.speed)
                writer.write(frame)
                self.bytes_sent += len(frame)
                await writer.drain()


async def _main(recording: Path, port: int, speed: float) -> None:
    standin = StandIn(load_frames(recording), speed)
    bound = await standin.start(port=port)
    print(f"guacd stand-in listening on 127.0.0.1:{bound}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recording", type=Path)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--speed", type=float, default=1.0)
    a = ap.parse_args()
    try:
        asyncio.run(_main(a.recording, a.port, a.speed))
    except KeyboardInterrupt:
        pass
