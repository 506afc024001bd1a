"""An audit event as a SIEM reads it: CEF, JSON, and the RFC 5424 syslog message around either.

The event is the dict ``db.audit_chain.event_record`` makes (id, seq, at, username,
action, target, client_addr, detail, prev_hash, hash). The CEF mapping is drawn in
``docs/siem.md``; ``CEF_NAMES`` and ``CEF_SEVERITY`` below are its tables.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from datetime import UTC, datetime

VENDOR, PRODUCT, VERSION = "gui-recorder", "gui-recorder", "0.1.0"
APP_NAME = "gui-recorder"
# RFC 5424 facility 13, "log audit"; SD-ID under 32473, the enterprise number RFC 5612 reserves for
# documentation, until the project registers its own.
FACILITY = 13
SD_ID = "gr@32473"

# What a SIEM shows as the event's name (CEF header field 6); an action not listed shows as itself.
CEF_NAMES = {
    "auth.login": "Sign-in",
    "auth.login_failed": "Sign-in failed",
    "connection.token": "Tunnel token issued",
    "connection.denied": "Connection denied",
    "connection.create": "Connection created",
    "connection.update": "Connection changed",
    "connection.delete": "Connection deleted",
    "tunnel.refused": "Tunnel refused",
    "session.start": "Session started",
    "session.end": "Session ended",
    "session.view": "Session viewed",
    "session.watch": "Live watch started",
    "session.watch_end": "Live watch ended",
    "session.terminate": "Session terminated by an auditor",
    "session.review": "Session reviewed",
    "session.export": "Evidence exported",
    "session.legal_hold": "Legal hold changed",
    "session.delete": "Session forgotten",
    "recording.view": "Recording read",
    "video.view": "Video watched",
    "text.view": "Session text read",
    "storage.delete": "Session expired and forgotten",
    "search": "Recordings searched",
    "security.violation": "Security violation",
}
# CEF severity 0-10; the default is 3 (an ordinary, successful action).
CEF_SEVERITY = {
    "security.violation": 9,
    "session.terminate": 7,
    "auth.login_failed": 5,
    "connection.denied": 5,
    "tunnel.refused": 5,
    "session.delete": 6,
    "storage.delete": 4,
    "connection.delete": 5,
    "connection.update": 4,
    "connection.create": 4,
}
DEFAULT_SEVERITY = 3


def severity(action: str) -> int:
    return CEF_SEVERITY.get(action, DEFAULT_SEVERITY)


def _syslog_severity(cef: int) -> int:
    # RFC 5424 severities: 2 critical, 4 warning, 5 notice, 6 informational.
    return 2 if cef >= 8 else 4 if cef >= 6 else 5 if cef >= 4 else 6


def _header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _ext(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n"))


def _millis(at: str) -> int:
    return int(datetime.fromisoformat(at).timestamp() * 1000)


def cef(event: dict) -> str:
    """``CEF:0|vendor|product|version|action|name|severity|extension`` (ArcSight's CEF, revision 25)."""
    action = event["action"]
    ext: list[tuple[str, object]] = [("rt", _millis(event["at"])), ("act", action),
                                     ("cat", action.split(".", 1)[0]), ("externalId", event.get("seq"))]
    if event.get("username"):
        ext.append(("suser", event["username"]))
    addr = event.get("client_addr")
    if addr:
        try:
            ipaddress.ip_address(addr)
            ext.append(("src", addr))
        except ValueError:
            ext.append(("shost", addr))
    if action.endswith("_failed") or action in ("connection.denied", "tunnel.refused", "security.violation"):
        ext.append(("outcome", "failure"))
    ext += [("cs1Label", "target"), ("cs1", event.get("target")),
            ("cs2Label", "detail"), ("cs2", event.get("detail") or {}),
            ("cn1Label", "seq"), ("cn1", event.get("seq")),
            ("cs3Label", "hash"), ("cs3", event.get("hash")),
            ("cs4Label", "prevHash"), ("cs4", event.get("prev_hash")),
            ("dvchost", socket.gethostname())]
    extension = " ".join(f"{k}={_ext(v)}" for k, v in ext if v is not None)
    header = "|".join(_header(str(v)) for v in (VENDOR, PRODUCT, VERSION, action, CEF_NAMES.get(action, action),
                                                severity(action)))
    return f"CEF:0|{header}|{extension}"


def as_json(event: dict) -> str:
    return json.dumps({**event, "severity": severity(event["action"]), "product": PRODUCT},
                      separators=(",", ":"), ensure_ascii=False)


def _sd_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _msgid(action: str) -> str:
    # MSGID: at most 32 printable US-ASCII characters, no spaces (RFC 5424 section 6.2.7).
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in action)[:32]
    return cleaned or "-"


def syslog_message(event: dict, body: str, hostname: str | None = None) -> bytes:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`` (RFC 5424), UTF-8."""
    pri = FACILITY * 8 + _syslog_severity(severity(event["action"]))
    at = datetime.fromisoformat(event["at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = (hostname or socket.gethostname() or "-")[:255]
    sd = f'[{SD_ID} seq="{_sd_value(event.get("seq"))}" hash="{_sd_value(event.get("hash"))}"]'
    return f"<{pri}>1 {at} {host} {APP_NAME} {os.getpid()} {_msgid(event['action'])} {sd} {body}".encode()


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1 (and RFC 5425 for TLS): ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)
