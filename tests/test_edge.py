"""The hardened edge (issue 10, point 8): throttled sign-in, the password policy, headers, /metrics, /docs,
error bodies, trusted proxies and tokens kept out of the logs.

Fast: the real application in-process (the fixtures of ``test_gateway_api``),
and, for what only the server does (proxy headers, its logs), a real uvicorn on
a loopback port built by the same ``server_config`` that ``gui-recorder serve``
uses. The sign-in throttle's clock is injected, never slept on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import threading
import time

import httpx
import pytest
import websockets

from gui_recorder.errors import ConfigError, PasswordPolicyError, ThrottledError
from gui_recorder.gateway import accounts, throttle
from gui_recorder.gateway.passwords import check_password
from support.inprocess import Clock
from test_gateway_api import gw, make_settings, open_session, running, template  # noqa: F401 (fixtures)


class Monotonic:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hashes(monkeypatch) -> list[str]:
    """Counts the argon2 verifications sign-in does (a wrapper around the real one, not a stand-in)."""
    calls: list[str] = []
    real_hashing = accounts._hashing

    class Counted:
        def __init__(self, real):
            self.real = real

        def verify(self, hash_, password):
            calls.append(password)
            return self.real.verify(hash_, password)

        def hash(self, password):
            return self.real.hash(password)

    def counted(db):
        hasher, dummy = real_hashing(db)
        return Counted(hasher), dummy

    monkeypatch.setattr(accounts, "_hashing", counted)
    return calls


@pytest.fixture
def clock(gw) -> Monotonic:
    clock = Monotonic()
    # Services is frozen: the test swaps in a copy whose throttle runs on the injected clock.
    services = gw.app.state.services
    gw.app.state.services = dataclasses.replace(services, login_throttle=throttle.from_settings(gw.settings, clock))
    return clock


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"username": username, "password": password})


# -- throttling --------------------------------------------------------------------------------------

async def test_an_account_is_locked_with_exponential_backoff_and_locked_tries_cost_no_hash(gw, clock, hashes):
    free = gw.settings.login_free_failures_per_account
    client = gw.client("198.51.100.1")
    for _ in range(free + 1):  # the free ones, then the first that sets a lock
        assert (await login(client, "vendor", "wrong-password")).status_code == 401
    assert len(hashes) == free + 1
    locked = await login(client, "vendor", gw.passwords["vendor"])  # even the right password
    assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
    assert locked.json()["error"] == "ThrottledError" and "try again in 1 s" in locked.json()["detail"]
    # From another address too: the lock is on the account.
    assert (await login(gw.client("198.51.100.2"), "vendor", "x")).status_code == 429
    assert len(hashes) == free + 1, "a locked try is answered before any argon2 hash"

    waits = []
    for _ in range(4):  # each further failure doubles the lock
        clock.now += int(locked.headers["retry-after"])
        assert (await login(client, "vendor", "wrong-password")).status_code == 401
        locked = await login(client, "vendor", "wrong-password")
        waits.append(int(locked.headers["retry-after"]))
    assert waits == [2, 4, 8, 16]
    clock.now += 16
    ok = await login(client, "vendor", gw.passwords["vendor"])
    assert ok.status_code == 200
    assert gw.app.state.services.login_throttle.failures("vendor") == 0, "a success clears the account's failures"
    failed = (await (await gw.api("admin")).get("/api/audit", params={"action": "auth.login_failed"})).json()
    assert len(failed) == free + 5 and max(e["detail"]["failures"] for e in failed) == free + 5


async def test_the_backoff_is_capped_and_failures_are_forgotten_after_the_window(gw, clock):
    t, waits = gw.app.state.services.login_throttle, []
    while len(waits) < 15:  # a patient attacker: waits out every lock, fails again
        try:
            t.begin("auditor", None)
            t.failed("auditor", None)
        except ThrottledError as locked:
            waits.append(locked.retry_after)
            clock.now += locked.retry_after
    cap = gw.settings.login_backoff_max_seconds
    assert waits[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] and waits[10:] == [cap] * 5
    clock.now += cap + gw.settings.login_failure_window_seconds + 1
    assert t.failures("auditor") == 0
    assert (await login(gw.client(), "auditor", gw.passwords["auditor"])).status_code == 200


async def test_an_address_guessing_many_accounts_is_locked(gw, clock, hashes):
    free = gw.settings.login_free_failures_per_address
    client = gw.client("203.0.113.66")
    for i in range(free + 1):
        assert (await login(client, f"user{i}", "guess-password")).status_code == 401
    # A new name from that address, and the attacker's own valid account, are locked too.
    assert (await login(client, "someone-new", "guess")).status_code == 429
    assert (await login(client, "operator", gw.passwords["operator"])).status_code == 429
    assert len(hashes) == free + 1
    assert (await login(gw.client("203.0.113.67"), "operator", gw.passwords["operator"])).status_code == 200


async def test_parallel_guesses_cannot_slip_past_the_count(gw, clock, hashes):
    """Once an account has failed, tries in flight count: a burst gets no more hashes than free failures left."""
    client = gw.client("198.51.100.9")
    assert (await login(client, "vendor", "first-wrong")).status_code == 401
    answers = await asyncio.gather(*(login(client, "vendor", f"burst-{i}") for i in range(30)))
    codes = [a.status_code for a in answers]
    free = gw.settings.login_free_failures_per_account
    # The free failures left (free - 1) may be in flight at once; past them one try at a time is let in,
    # whose failure locks the account. Whether that one comes during the burst depends on how fast the
    # others' hashes finish: either way no more than free + 1 passwords are checked, never 31.
    assert len(hashes) in (free, free + 1), hashes
    assert codes.count(401) == len(hashes) - 1 and codes.count(429) == 30 - codes.count(401)


async def test_many_sign_ins_of_one_account_at_once_are_not_throttled(gw, clock):
    answers = await asyncio.gather(*(login(gw.client(), "operator", gw.passwords["operator"]) for _ in range(12)))
    assert [a.status_code for a in answers] == [200] * 12


# -- the password policy ------------------------------------------------------------------------------

@pytest.mark.parametrize("password,why", [
    ("short-pw", "at least 12 characters; it has 8"),
    ("correct-horse-battery", None),
    ("password1234", "most common passwords"),
    ("Qwertyuiop123!", "most common passwords"),
    ("iloveyou2025!!", "most common passwords"),
    ("aaaaaaaaaaaaaa", "too few characters"),
    ("x" * 1025, "at most 1024"),
])
def test_policy_refusals_say_what_to_change(password, why):
    if why is None:
        check_password(password, "carol", 12)  # long, not the name, not common: fine
        return
    with pytest.raises(PasswordPolicyError, match=why):
        check_password(password, "carol", 12)


def test_the_username_is_not_a_password():
    with pytest.raises(PasswordPolicyError, match="must not be the username"):
        check_password("Administrator1", "administrator1", 12)
    with pytest.raises(PasswordPolicyError, match="must not be the username"):
        check_password("1rotartsinimda", "administrator1", 12)


async def test_ensure_user_applies_the_policy_and_the_demo_passwords_pass(gw):
    with pytest.raises(PasswordPolicyError, match="at least 12"):
        accounts.ensure_user(gw.db, "erin", "tiny", "vendor")
    assert PasswordPolicyError.http_status == 422
    # The shapes the dev stack (`role-` + token_urlsafe(12)) and the tests generate.
    for role in ("admin", "operator", "vendor", "auditor"):
        accounts.ensure_user(gw.db, f"demo-{role}", f"{role}-{secrets.token_urlsafe(12)}", role)
    # An existing account re-ensured with its (older, weaker-policy) password is not refused.
    accounts.ensure_user(gw.db, "vendor", gw.passwords["vendor"], "vendor", min_length=64)


async def test_a_weak_first_admin_password_stops_the_start_with_a_clear_message(tmp_path):
    with pytest.raises(ConfigError, match="GUI_RECORDER_ADMIN_PASSWORD is refused: .*at least 12"):
        async with running(make_settings(tmp_path, admin_password="admin"), Clock()):
            pass


# -- headers --------------------------------------------------------------------------------------------

async def test_security_headers_on_every_response_and_no_store_on_api_json(gw):
    client = gw.client()
    admin = await gw.api("admin")
    for resp in (await client.get("/"), await client.get("/js/common.js"), await client.get("/api/auth/me"),
                 await admin.get("/api/sessions"), await client.get("/no-such-page"), await client.get("/docs")):
        h = resp.headers
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer", resp.url
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-eval" not in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert (await client.get("/")).headers.get("cache-control") != "no-store"  # pages may be cached
    for resp in (await client.get("/api/auth/me"), await admin.get("/api/sessions"),
                 await admin.get("/api/audit")):
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.headers["cache-control"] == "no-store", resp.url
    assert "style-src 'self';" in (await client.get("/")).headers["content-security-policy"]


def test_the_pages_have_no_inline_script_or_style_the_csp_would_block():
    import re
    from pathlib import Path

    web = Path(__file__).resolve().parent.parent / "web"
    for page in web.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"{page.name}: inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{page.name}: inline event handler"
        assert not re.search(r"\sstyle\s*=", html), f"{page.name}: style attribute"
        assert "javascript:" not in html and "//cdn" not in html and "https://" not in html, page.name


# -- /metrics, /docs -----------------------------------------------------------------------------------

async def test_metrics_are_loopback_only_by_default(gw):
    far = await gw.client("192.0.2.10").get("/metrics")
    assert far.status_code == 403 and "GUI_RECORDER_METRICS_TOKEN" in far.json()["detail"]
    near = await gw.client("127.0.0.1").get("/metrics")
    assert near.status_code == 200 and "gr_active_sessions" in near.text


async def test_metrics_need_the_bearer_token_when_one_is_set(gw):
    token = secrets.token_urlsafe(24)
    services = gw.app.state.services
    gw.app.state.services = dataclasses.replace(services, settings=gw.settings.model_copy(
        update={"metrics_token": gw.settings.secret_key.__class__(token)}))
    try:
        for addr in ("127.0.0.1", "192.0.2.10"):
            client = gw.client(addr)
            assert (await client.get("/metrics")).status_code == 403
            assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 403
            ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and "gr_active_sessions" in ok.text
    finally:
        gw.app.state.services = services


def test_prometheus_sends_the_bearer_token():
    from pathlib import Path

    import yaml  # PyYAML: present in the environment as a dependency of uvicorn[standard]

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "gui-recorder")
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]


async def test_docs_are_served_from_local_assets_and_can_be_closed(gw, tmp_path):
    page = await gw.client().get("/docs")
    if page.status_code == 404:
        pytest.fail("Swagger UI is not installed in web/vendor/swagger-ui: run make setup")
    assert page.status_code == 200 and "/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text and "<script>" not in page.text
    bundle = await gw.client().get("/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert (await gw.client().get("/redoc")).status_code == 404
    closed = gw.settings.model_copy(update={"var_dir": tmp_path, "api_docs": False,
                                            "admin_password": gw.settings.secret_key.__class__("closed-docs-admin")})
    async with running(closed, Clock()) as app:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as c:
            assert (await c.get("/docs")).status_code == 404
            assert (await c.get("/openapi.json")).status_code == 404
            assert (await c.get("/api/health")).status_code in (200, 503)


# -- error bodies ------------------------------------------------------------------------------------------

async def test_a_storage_failure_answers_generically_and_logs_the_detail(gw, caplog):
    """The test app's object store is a closed port: reading a recording fails for real."""
    session = open_session(gw, "vendor", "win-rdp")
    admin = await gw.api("admin")
    with caplog.at_level(logging.ERROR, logger="gui_recorder.gateway.edge"):
        resp = await admin.get(f"/api/sessions/{session.id}/recording")
    assert resp.status_code == 503, resp.text
    body = resp.json()
    endpoint = gw.settings.s3_endpoint
    assert body["error"] == "StorageError" and "try again" in body["detail"] and "incident" in body["detail"]
    assert endpoint not in resp.text and gw.settings.tiers[0].bucket not in resp.text
    incident = body["detail"].rsplit(" ", 1)[1]
    logged = [r.getMessage() for r in caplog.records if incident in r.getMessage()]
    assert logged and endpoint in logged[0], "the detail is in the log, under the incident number"


# -- the real server: trusted proxies, Secure cookies, tokens out of its logs -------------------------------

class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def serve(settings):
    """A real uvicorn, configured by `server_config` as `gui-recorder serve` is, on a free loopback port."""
    import uvicorn

    from gui_recorder.cli import server_config
    from gui_recorder.gateway.app import create_app
    from gui_recorder.stack.process import free_port

    settings = settings.model_copy(update={"port": free_port()})
    server = uvicorn.Server(server_config(settings, create_app(settings), log_level="info", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}/"
    deadline = time.monotonic() + 30
    # Any answer will do (health is 503 here: the object store is a closed port on purpose).
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    return server, thread, url


@pytest.mark.parametrize("trusted", ["127.0.0.1", ""])
async def test_forwarded_headers_count_only_from_trusted_proxies_and_tokens_stay_out_of_logs(tmp_path, trusted):
    settings = make_settings(tmp_path, admin_password="proxy-test-admin-pw", trusted_proxies=trusted)
    server, thread, url = serve(settings)
    lines = Lines()  # after the server configured its loggers (that drops their handlers)
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(lines)
    try:
        forwarded = {"X-Forwarded-For": "203.0.113.77", "X-Forwarded-Proto": "https"}
        async with httpx.AsyncClient(base_url=url) as client:
            resp = await client.post("/api/auth/login", headers=forwarded,
                                     json={"username": "admin", "password": "proxy-test-admin-pw"})
            assert resp.status_code == 200
            cookie = resp.headers["set-cookie"].lower()
            token = resp.json()["token"]
            audit = (await client.get("/api/audit", params={"action": "auth.login"},
                                      headers={"Authorization": f"Bearer {token}"})).json()
        if trusted:
            assert "; secure" in cookie and audit[0]["client_addr"] == "203.0.113.77"
            assert resp.headers["strict-transport-security"].startswith("max-age=")
        else:  # from anyone else the headers are ignored
            assert "secure" not in cookie and audit[0]["client_addr"] == "127.0.0.1"
        assert "server" not in resp.headers
        secret = secrets.token_urlsafe(32)
        ws_url = url.replace("http", "ws", 1) + f"api/tunnel?token={secret}&width=800&height=600"
        async with websockets.connect(ws_url, subprotocols=["guacamole"]) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get(f"/api/tunnel?token={secret}")
        assert any("/api/tunnel?token=[redacted]" in line for line in lines.lines), lines.lines
        assert not any(secret in line for line in lines.lines)
    finally:
        server.should_exit = True
        thread.join(30)
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(lines)
