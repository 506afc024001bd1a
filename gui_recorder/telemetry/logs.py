"""Structured logs: one JSON object per line (level, component, session id, request id, trace id), or
plain text for people (``make run``), configured in one place (``configure``) for every logger.

Nothing at the call sites changes: the session and request ids come from ``context``'s
contextvars, and the same redaction runs on every record (``redact``): one-time tokens in
URLs (what ``gateway.edge.RedactTokens`` does for uvicorn's lines), bearer tokens, cookies
carrying a sign-in, and ``password``/``secret``/``token`` values in ``key=value`` or JSON form.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

from gui_recorder.settings import Settings
from gui_recorder.telemetry import context

_PATTERNS = [
    # One-time tunnel and watch tokens in a URL's query (/api/tunnel?token=...).
    (re.compile(r"([?&](?:token|watch_token)=)[^&\s\"']+"), r"\1[redacted]"),
    # Authorization headers and bearer tokens anywhere in a message.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(gr_session=)[^;\s\"']+"), r"\1[redacted]"),
    # key=value and "key": "value" for names that hold secrets.
    (re.compile(r"(?i)\b((?:password|passwd|secret(?:_key)?|token|api_key)\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"),
     r"\1[redacted]"),
    (re.compile(r"(?i)(\"(?:password|passwd|secret(?:_key)?|token|api_key)\"\s*:\s*)\"[^\"]*\""), r'\1"[redacted]"'),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Stamps each record with the component, session id, request id and the current trace's ids."""

    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        record.session_id = context.current_session_id()
        record.request_id = context.current_request_id()
        record.trace_id = record.span_id = None
        try:
            from opentelemetry import trace

            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                record.trace_id, record.span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        except Exception:  # noqa: BLE001 - a log line must never fail for its trace ids
            pass
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "component": getattr(record, "component", None),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "session_id": getattr(record, "session_id", None),
            "request_id": getattr(record, "request_id", None),
        }
        if getattr(record, "trace_id", None):
            entry["trace_id"], entry["span_id"] = record.trace_id, record.span_id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps({k: v for k, v in entry.items() if v is not None}, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For people: the old line, with the session and request when there are any."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        where = [f"session={record.session_id}" if getattr(record, "session_id", None) else "",
                 f"request={record.request_id}" if getattr(record, "request_id", None) else ""]
        record.where = (" [" + " ".join(w for w in where if w) + "]") if any(where) else ""
        return redact(super().format(record))


class _Stderr(logging.StreamHandler):
    """Whatever sys.stderr is at each record (a test runner swaps it), not the one at configure time."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure(settings: Settings, component: str, stream=None) -> logging.Handler:
    """The root logger's one handler, for this process: every logger (uvicorn's too, which propagate to
    it) writes through it."""
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.addFilter(ContextFilter(component))
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.gui_recorder = True
    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, and basicConfig's plain one; others' (a test runner's capture) stay.
        if getattr(old, "gui_recorder", False) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler
