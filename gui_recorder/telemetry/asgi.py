"""The outermost ASGI middleware: each HTTP request and WebSocket gets a request id and a server span.

The id is the caller's ``X-Request-ID`` when it is a sane token (a proxy's), else a new one; it is
bound for the logs, set on the span and sent back in the response's ``X-Request-ID``. The span is
named by the route's template (``GET /api/sessions/{session_id}``), never by the raw path.
"""

from __future__ import annotations

import re
import secrets

from opentelemetry import trace

from gui_recorder.telemetry import context
from gui_recorder.telemetry.traces import span

_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _request_id(scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE.match(candidate):
                return candidate
    return secrets.token_hex(8)


class RequestContext:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        rid = _request_id(scope)
        context.bind(request=rid)
        method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
        status = {}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        with span(f"{method} {scope.get('path', '')}", kind=trace.SpanKind.SERVER,
                  **{"http.request.method": method, "url.path": scope.get("path")}) as current:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = scope.get("route")
                if getattr(route, "path", None):
                    current.update_name(f"{method} {route.path}")
                    current.set_attribute("http.route", route.path)
                if "code" in status:
                    current.set_attribute("http.response.status_code", status["code"])
                    if status["code"] >= 500:
                        current.set_status(trace.Status(trace.StatusCode.ERROR))
