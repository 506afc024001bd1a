"""The ``notify`` action: the alert as JSON to a webhook and as one syslog line (RFC 5424 over UDP).

Called in a thread, never on the relay's path; a sink that is down is
logged and the alert stays in the database (the source of truth).
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime

import httpx

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 5.0
_SEVERITY_CODE = {"low": 6, "medium": 5, "high": 4, "critical": 2}  # syslog: info, notice, warning, critical
_FACILITY_AUTHPRIV = 10


def syslog_line(alert: dict, host: str = "gui-recorder") -> bytes:
    pri = _FACILITY_AUTHPRIV * 8 + _SEVERITY_CODE.get(alert.get("severity", ""), 5)
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = json.dumps(alert, sort_keys=True, separators=(",", ":"))
    return f"<{pri}>1 {stamp} {host} gui-recorder - alert - {body}".encode()


def notify(alert: dict, webhook_url: str | None, syslog_address: str | None) -> list[str]:
    """Send to each configured sink; the names of the sinks that failed."""
    failed = []
    if webhook_url:
        try:
            httpx.post(webhook_url, json={"type": "gui-recorder.alert", "alert": alert},
                       timeout=WEBHOOK_TIMEOUT_SECONDS).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("alert %s: the webhook failed: %s", alert.get("id"), exc)
            failed.append("webhook")
    if syslog_address:
        host, _, port = syslog_address.rpartition(":")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(syslog_line(alert), (host or "127.0.0.1", int(port)))
        except (OSError, ValueError) as exc:
            log.warning("alert %s: syslog to %s failed: %s", alert.get("id"), syslog_address, exc)
            failed.append("syslog")
    return failed
