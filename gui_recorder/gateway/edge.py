"""The HTTP edge: security headers, error bodies, /metrics access, /docs, tokens kept out of logs.

Issue 10 found every one of these open: no security headers at all, a 503
naming the object store's endpoint and bucket, /metrics and /docs served to
anyone, Swagger UI loaded from a CDN with no integrity, one-time tunnel tokens
in the access log.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gui_recorder.errors import (DatabaseError, ForbiddenError, GuacdError, GuiRecorderError, KeyUnavailableError,
                                 NotFoundError, StorageError, ThrottledError)
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.settings import Settings

log = logging.getLogger(__name__)

# Scripts and styles from our own origin only: no inline script, no eval, no inline style
# attribute (the pages keep theirs in web/js and web/css). Images and video may be blob:/data:
# (guacamole-common-js draws received images through them). No framing by anyone.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; worker-src 'self' blob:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI (a React app) sets style attributes; its scripts are still ours only.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response, ``no-store`` on API answers.

    JSON is always ``no-store`` (session lists, audit rows, tokens must not sit in a
    browser or proxy cache); any other response under /api or /metrics too, unless
    its route chose a Cache-Control itself.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        api = path.startswith("/api/") or path == "/metrics"
        csp = (DOCS_CSP if path == "/docs" else CSP).encode()
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", csp))
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"application/json"):
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                elif api and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- error bodies ---------------------------------------------------------------------------------

# What a user is told when the server side failed: what to do, never where our components are.
# The detail (endpoints, buckets, SQL) goes to the log under the incident number.
_GENERIC = {
    StorageError: "the recording store is unavailable right now; try again in a few minutes",
    DatabaseError: "the database is unavailable right now; try again in a few minutes",
    GuacdError: "the remote-desktop proxy could not be reached or refused the connection; try again later",
}


def error_response(request: Request, exc: GuiRecorderError) -> JSONResponse:
    status = exc.http_status
    headers = {}
    if isinstance(exc, ThrottledError):
        headers["Retry-After"] = str(exc.retry_after)
    if status < 500:
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status, headers=headers)
    incident = secrets.token_hex(4)
    log.error("incident %s: %s %s failed: %s: %s", incident, request.method, request.url.path,
              type(exc).__name__, exc)
    generic = next((text for kind, text in _GENERIC.items() if isinstance(exc, kind)),
                   "the gateway failed to answer this request")
    if isinstance(exc, KeyUnavailableError):  # a key id names no component: the operator needs it to act
        generic = f"a key this recording is sealed with is not available (key id {exc.key_id})"
    detail = f"{generic}; if it persists, give an administrator the incident number {incident}"
    return JSONResponse({"error": type(exc).__name__, "detail": detail}, status_code=status, headers=headers)


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 in the body shape of every other error: a readable ``detail``, the raw problems in ``fields``."""
    fields = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path"))
        fields.append({"field": where, "message": error.get("msg", "")})
    detail = "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields)
    return JSONResponse({"error": "ValidationError", "detail": detail or "the request is not valid",
                         "fields": fields}, status_code=422)


def http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (an unknown path, a wrong method) in the same body shape."""
    names = {404: "NotFoundError", 405: "MethodNotAllowed"}
    return JSONResponse({"error": names.get(exc.status_code, "HTTPError"), "detail": str(exc.detail)},
                        status_code=exc.status_code, headers=getattr(exc, "headers", None))


# -- /metrics ---------------------------------------------------------------------------------------

def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics_guard(request: Request, services: ServicesDep) -> None:
    """``metrics_token`` set: a matching bearer token; else loopback clients only, unless opened by setting."""
    settings: Settings = services.settings
    if settings.metrics_token is not None:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), settings.metrics_token.get_secret_value().encode()):
            raise ForbiddenError("/metrics needs the bearer token configured as GUI_RECORDER_METRICS_TOKEN")
        return
    if settings.metrics_loopback_only and not _loopback(request.client.host if request.client else None):
        raise ForbiddenError("/metrics is served to this host only; set GUI_RECORDER_METRICS_TOKEN to scrape "
                             "it from elsewhere")


# -- /docs ---------------------------------------------------------------------------------------

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gui-recorder API</title>
<link rel="stylesheet" href="/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/js/docs.js"></script>
</body></html>
"""


def install_docs(app: FastAPI, web_dir: Path) -> None:
    """/docs: Swagger UI from web/vendor (fetched and checked by scripts/setup.sh), no CDN.

    The app is built with ``docs_url=None, redoc_url=None`` (FastAPI's own pages load
    from a CDN with inline scripts); ``openapi_url`` is None when ``api_docs`` is off.
    """
    from gui_recorder.gateway.auth import public
    from fastapi import Depends

    bundle = web_dir / "vendor" / "swagger-ui" / "swagger-ui-bundle.js"

    @app.get("/docs", include_in_schema=False,
             dependencies=[Depends(public("the API's documentation; closed by api_docs=false"))])
    async def docs() -> HTMLResponse:
        if not bundle.is_file():
            raise NotFoundError("Swagger UI is not installed here: run `make setup` (it fetches it into web/vendor)")
        return HTMLResponse(_DOCS_PAGE)


# -- logs ------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"([?&](?:token|watch_token)=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Replaces one-time tokens in a log line's URL (``/api/tunnel?token=...``) with ``[redacted]``.

    On uvicorn's access log (HTTP requests) and its error log, where it logs each
    WebSocket it accepts with the full query string.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN.sub(r"\1[redacted]", message), ()
        return True


def redact_server_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
