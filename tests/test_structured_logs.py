"""Structured logs (issue 18): one JSON object per line with level, component, session and request ids,
the same redaction everywhere, plain text for people; and the request id a real request carries."""

from __future__ import annotations

import io
import json
import logging
import secrets

import pytest

from gui_recorder.settings import Settings
from gui_recorder.telemetry import bind, logs, span
from gui_recorder.telemetry.context import bound


@pytest.fixture
def capture():
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    out = io.StringIO()

    def configure(fmt: str = "json") -> io.StringIO:
        settings = Settings(secret_key="k" * 20, s3_secret_key="x", log_format=fmt, log_level="DEBUG")
        logs.configure(settings, "gateway", stream=out)
        return out

    yield configure
    for h in list(root.handlers):
        if getattr(h, "gui_recorder", False):
            root.removeHandler(h)
    for h in before:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)


def test_one_json_line_per_event_with_its_context(capture):
    out = capture()
    log = logging.getLogger("gui_recorder.gateway.tunnel")
    with bound(session="s-123", request="r-9"):
        log.warning("session %s ended: %s", "s-123", "guacd went away")
    log.info("no context here")
    first, second = [json.loads(line) for line in out.getvalue().splitlines()]
    assert first["level"] == "WARNING" and first["component"] == "gateway"
    assert first["logger"] == "gui_recorder.gateway.tunnel" and first["message"] == "session s-123 ended: guacd went away"
    assert first["session_id"] == "s-123" and first["request_id"] == "r-9" and first["ts"].endswith("+00:00")
    assert "session_id" not in second and second["level"] == "INFO"


def test_an_exception_is_one_line_too(capture):
    out = capture()
    try:
        raise ValueError("bad thing with password=hunter2")
    except ValueError:
        logging.getLogger("x").exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert "ValueError" in entry["exception"] and "hunter2" not in entry["exception"]


@pytest.mark.parametrize("message, secret", [
    ("GET /api/tunnel?token=abc123def&width=1024", "abc123def"),
    ("watching /api/watch?watch_token=zzzTOKENzzz", "zzzTOKENzzz"),
    ("headers: Authorization: Bearer eyJhbGciOi.secret.part", "eyJhbGciOi.secret.part"),
    ("cookie gr_session=sess-cookie-value; path=/", "sess-cookie-value"),
    ('body {"username": "admin", "password": "p4ss w0rd"}', "p4ss w0rd"),
    ("connecting with password=s3cr3t! host=x", "s3cr3t!"),
    ("s3 secret_key: minio-secret-value", "minio-secret-value"),
])
def test_secrets_never_reach_a_line(capture, message, secret):
    for fmt in ("json", "text"):
        out = capture(fmt)
        logging.getLogger("gui_recorder").warning(message)
        text = out.getvalue()
        assert secret not in text and "[redacted]" in text, (fmt, text)
        out.truncate(0)
        out.seek(0)


def test_text_for_people(capture):
    out = capture("text")
    with bound(session="s-7"):
        logging.getLogger("gui_recorder.worker").info("render done")
    line = out.getvalue().strip()
    assert " INFO gui_recorder.worker [session=s-7]: render done" in line and not line.startswith("{")


def test_a_span_binds_its_session_for_the_logs_inside(capture):
    out = capture()
    with span("job.render", session_id="s-42"):
        logging.getLogger("gui_recorder.worker.runner").info("rendering")
    logging.getLogger("gui_recorder.worker.runner").info("after")
    inside, after = [json.loads(x) for x in out.getvalue().splitlines()]
    assert inside["session_id"] == "s-42" and "session_id" not in after


async def test_a_request_carries_its_request_id_into_logs_and_response(capture, tmp_path):
    """The real app in process: the middleware's id on the response and on the route's log lines."""
    import httpx

    from gui_recorder.gateway.app import create_app

    settings = Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(16), s3_secret_key="x",
                        s3_endpoint="127.0.0.1:9", admin_password="a-long-admin-password")
    app = create_app(settings)
    out = capture()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            resp = await client.post("/api/auth/login", json={"username": "admin", "password": "wrong-password-x"},
                                     headers={"X-Request-ID": "req-from-proxy"})
            fresh = await client.get("/")
    assert resp.status_code == 401 and resp.headers["x-request-id"] == "req-from-proxy"
    assert len(fresh.headers["x-request-id"]) == 16
    entries = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]
    assert all("wrong-password-x" not in json.dumps(e) for e in entries)
    bind(request="")  # nothing leaks into the next test's context
