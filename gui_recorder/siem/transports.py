"""How one batch of events reaches one sink: syslog over UDP, TCP or TLS, a JSON-lines file, HTTP.

Each transport's ``send`` delivers a batch or raises ``SinkDown``; ``probe`` finds a
broken idle connection before the next event is trusted to it. Syslog over TCP and TLS
has no acknowledgement: bytes the kernel accepted may die with a receiver killed
before it read them. So a stream transport keeps what it sent in the last
``resend_seconds`` and hands it back in ``SinkDown.unconfirmed`` when the connection is
found broken; the delivery sends it again first (at least once: a duplicate carries
the same seq and hash, the SIEM's key to fold it).
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import httpx

from gui_recorder.settings import AuditSinkSettings
from gui_recorder.siem import formats

CONNECT_TIMEOUT = 5.0
SEND_TIMEOUT = 10.0


class SinkDown(Exception):
    """The sink did not take the batch; ``unconfirmed``: events sent before that may be lost too."""

    def __init__(self, message: str, unconfirmed: list[dict] | None = None):
        super().__init__(message)
        self.unconfirmed = unconfirmed or []


class Transport:
    def send(self, events: list[dict]) -> None:
        raise NotImplementedError

    def probe(self) -> None:
        """Raises SinkDown when an idle connection is known to be broken."""

    def close(self) -> None:
        """Releases the connection; the next send opens another."""


def _body(sink: AuditSinkSettings, event: dict) -> str:
    return formats.cef(event) if sink.format == "cef" else formats.as_json(event)


class SyslogUdp(Transport):
    """One RFC 5424 message per datagram (RFC 5426). A datagram can be lost unseen: no resend, no spool
    unless the socket itself fails."""

    def __init__(self, sink: AuditSinkSettings):
        self.sink = sink
        self.sock: socket.socket | None = None

    def send(self, events: list[dict]) -> None:
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_INET6 if ":" in self.sink.host else socket.AF_INET,
                                          socket.SOCK_DGRAM)
                self.sock.connect((self.sink.host, self.sink.port))
            for e in events:
                self.sock.send(formats.syslog_message(e, _body(self.sink, e)))
        except OSError as exc:
            self.close()
            raise SinkDown(f"syslog udp {self.sink.host}:{self.sink.port}: {exc}") from exc

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class SyslogStream(Transport):
    """RFC 5424 messages, octet-counted (RFC 6587 3.4.1), over TCP or TLS (RFC 5425)."""

    def __init__(self, sink: AuditSinkSettings, clock=time.monotonic):
        self.sink = sink
        self.clock = clock
        self.sock: socket.socket | None = None
        self.recent: deque[tuple[float, dict]] = deque()
        self.tls = sink.transport == "tls"
        self.context: ssl.SSLContext | None = None
        if self.tls:
            self.context = ssl.create_default_context(cafile=sink.ca_file)
            self.context.minimum_version = ssl.TLSVersion.TLSv1_2

    def _where(self) -> str:
        return f"syslog {self.sink.transport} {self.sink.host}:{self.sink.port}"

    def _connect(self) -> socket.socket:
        raw = socket.create_connection((self.sink.host, self.sink.port), timeout=CONNECT_TIMEOUT)
        raw.settimeout(SEND_TIMEOUT)
        if self.context is None:
            return raw
        try:
            return self.context.wrap_socket(raw, server_hostname=self.sink.server_name or self.sink.host)
        except BaseException:
            raw.close()
            raise

    def _broken(self, message: str, exc: BaseException | None = None) -> SinkDown:
        horizon = self.clock() - self.sink.resend_seconds
        unconfirmed = [e for at, e in self.recent if at >= horizon]
        self.recent.clear()
        self.close()
        down = SinkDown(f"{self._where()}: {message}", unconfirmed)
        if exc is not None:
            down.__cause__ = exc
        return down

    def probe(self) -> None:
        if self.sock is None:
            return
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return
            # A syslog receiver never writes: anything readable is the end of the connection.
            data = self.sock.recv(1024)
        except ssl.SSLWantReadError:
            return  # TLS bookkeeping (e.g. a session ticket), not an end
        except OSError as exc:
            raise self._broken(f"connection lost: {exc}", exc) from exc
        if not data:
            raise self._broken("the receiver closed the connection")

    def send(self, events: list[dict]) -> None:
        self.probe()
        try:
            if self.sock is None:
                self.sock = self._connect()
            frames = b"".join(formats.octet_counted(formats.syslog_message(e, _body(self.sink, e))) for e in events)
            self.sock.sendall(frames)
        except OSError as exc:
            # `recent` holds only earlier batches: the caller spools the failed one after them.
            raise self._broken(f"{exc}", exc) from exc
        now = self.clock()
        self.recent.extend((now, e) for e in events)
        horizon = now - self.sink.resend_seconds
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class JsonLinesFile(Transport):
    """One JSON object per line, appended; rotated to ``path.1`` ... ``path.N`` at ``max_bytes``."""

    def __init__(self, sink: AuditSinkSettings):
        self.sink = sink
        self.path = Path(sink.path)

    def _rotate(self) -> None:
        for n in range(self.sink.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.sink.backups:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()

    def send(self, events: list[dict]) -> None:
        data = "".join(formats.as_json(e) + "\n" for e in events).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(data) > self.sink.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkDown(f"audit file {self.path}: {exc}") from exc


class Http(Transport):
    """Splunk's HTTP Event Collector or Elastic's bulk API; a 2xx answer is the acknowledgement.

    Elastic's documents are created with the event's hash as ``_id``: a batch sent again after
    a timeout cannot make duplicates (409 conflicts count as delivered)."""

    def __init__(self, sink: AuditSinkSettings):
        self.sink = sink
        headers = {}
        if sink.token is not None:
            scheme = "Splunk" if sink.flavour == "splunk" else "ApiKey"
            headers["Authorization"] = f"{scheme} {sink.token.get_secret_value()}"
        self.client = httpx.Client(headers=headers, timeout=SEND_TIMEOUT, verify=sink.ca_file or True)

    def _body(self, events: list[dict]) -> tuple[bytes, str]:
        if self.sink.flavour == "splunk":
            return "".join(json.dumps({"time": datetime.fromisoformat(e["at"]).timestamp(),
                                       "host": formats.socket.gethostname(), "source": formats.APP_NAME,
                                       "sourcetype": "gui-recorder:audit", "event": e},
                                      separators=(",", ":")) for e in events).encode(), "application/json"
        lines = []
        for e in events:
            lines.append(json.dumps({"create": {"_id": e.get("hash") or f"id-{e.get('id')}"}}))
            lines.append(json.dumps({"@timestamp": e["at"], **e}, separators=(",", ":")))
        return ("\n".join(lines) + "\n").encode(), "application/x-ndjson"

    def send(self, events: list[dict]) -> None:
        body, kind = self._body(events)
        try:
            resp = self.client.post(self.sink.url, content=body, headers={"Content-Type": kind})
        except httpx.HTTPError as exc:
            raise SinkDown(f"http {self.sink.url}: {exc}") from exc
        if not 200 <= resp.status_code < 300:
            raise SinkDown(f"http {self.sink.url}: {resp.status_code} {resp.text[:200]}")
        if self.sink.flavour == "elastic":
            answer = resp.json()
            if answer.get("errors"):
                failed = [i for i in answer.get("items", [])
                          if (i.get("create") or {}).get("status", 200) not in (200, 201, 409)]
                if failed:
                    raise SinkDown(f"http {self.sink.url}: {len(failed)} documents refused: "
                                   f"{failed[0].get('create', {}).get('error')}")

    def close(self) -> None:
        self.client.close()


def transport_for(sink: AuditSinkSettings) -> Transport:
    if sink.kind == "file":
        return JsonLinesFile(sink)
    if sink.kind == "http":
        return Http(sink)
    return SyslogUdp(sink) if sink.transport == "udp" else SyslogStream(sink)
