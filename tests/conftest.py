"""Session fixtures: the real stack (guacd, MinIO, RDP and VNC targets) started once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from gui_recorder.stack import Stack, StackInfo

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# tesseract run in this process as the worker runs it (`ocr_threads`, default 1, set by cmd_worker):
# OpenMP's threads, one per core, otherwise spin against each other and the rest of the suite.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> StackInfo:
    """Every real component, on free loopback ports, stopped by PID at the end."""
    with Stack(tmp_path_factory.mktemp("stack")) as running:
        yield running.info


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def minio_client(stack):
    from minio import Minio

    return Minio(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key, secure=False)


def pytest_configure(config):
    # Chromium and X programs must never try to reach the (closed) network.
    os.environ.setdefault("NO_AT_BRIDGE", "1")
    # Real argon2, at its cheapest costs: the tests hash and verify a password some 160 times, which at
    # the product's costs (64 MiB, 3 passes: ~0.2 s each here) was most of the unit layer's time. Every
    # Settings built in the tests, and every gateway or worker process they start, inherits this;
    # bench/login.py measures the product's own costs.
    os.environ.setdefault("GUI_RECORDER_PASSWORD_HASH_TIME_COST", "1")
    os.environ.setdefault("GUI_RECORDER_PASSWORD_HASH_MEMORY_KIB", "1024")
    # Hypothesis's per-example deadline is a timed assertion: on a loaded 2-core machine it failed a
    # correct parser (speed is bench/codec.py's to measure, not a test's).
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile("gui-recorder", deadline=None)
    hypothesis_settings.load_profile("gui-recorder")
    # The product asks admins and auditors for a TOTP second factor (mfa_roles); the tests that are not
    # about it sign in with a password only, as before. tests/test_totp.py sets mfa_roles itself.
    os.environ.setdefault("GUI_RECORDER_MFA_ROLES", "[]")


# Fixtures that start real components: whoever uses one is a `stack` test.
REAL_COMPONENT_FIXTURES = {"stack", "postgres_url", "directory", "oidc_provider"}


def pytest_collection_modifyitems(config, items):
    """Mark by what a test really uses, so `-m "not stack"` is the fast unit layer and no test can forget.

    A test that needs the real components reaches the `stack` fixture (directly or through
    `gateway`, `worker`...) or starts one of its own (`postgres_url`: a real PostgreSQL 15);
    one that drives Chromium reaches `browser`.
    """
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & REAL_COMPONENT_FIXTURES:
            item.add_marker(pytest.mark.stack)
        if "browser" in used:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.stack)


@dataclass
class Gateway:
    """A running gateway (in this process, on a free port) in front of the real stack."""

    url: str
    settings: object
    app: object
    accounts: dict[str, str]  # role (= username) -> password
    connections: list[dict]

    def login(self, role: str) -> str:
        import httpx

        resp = httpx.post(self.url + "api/auth/login", json={"username": role, "password": self.accounts[role]})
        resp.raise_for_status()
        return resp.json()["token"]

    def api(self, role: str):
        import httpx

        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.login(role)}"},
                            timeout=30)


@pytest.fixture(scope="session")
def gateway(stack, tmp_path_factory) -> Gateway:
    import secrets
    import threading
    import time

    import uvicorn

    from gui_recorder.gateway.app import create_app
    from gui_recorder.stack.demo import seed_demo
    from gui_recorder.settings import Settings
    from gui_recorder.stack.checks import http_ok
    from gui_recorder.stack.process import free_port

    var = tmp_path_factory.mktemp("gateway")
    accounts = {role: f"{role}-{secrets.token_urlsafe(8)}" for role in ("admin", "operator", "vendor", "auditor")}
    settings = Settings(
        var_dir=var, port=free_port(), secret_key=secrets.token_urlsafe(32), admin_password=accounts["admin"],
        guacd_host=stack.guacd.host, guacd_port=stack.guacd.port, s3_endpoint=stack.minio.endpoint,
        s3_access_key=stack.minio.access_key, s3_secret_key=stack.minio.secret_key,
        segment_max_seconds=2.0,
        # Named explicitly, so the gateways a test derives with another var_dir seal with the same keys.
        seal_kek_file=var / "keys" / "kek.key", seal_signing_key_file=var / "keys" / "signing.pem",
    )
    from gui_recorder.sealing.keys import FileKek, FileSigner
    FileKek.load(settings.seal_kek_file, create=True)
    FileSigner.load(settings.seal_signing_key_file, create=True)
    connections = seed_demo(settings, stack, accounts)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                           lifespan="on", ws_per_message_deflate=False))
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}/"
    deadline = time.monotonic() + 30
    while not http_ok(url + "api/health"):
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    yield Gateway(url, settings, app, accounts, connections)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser():
    """Debian's real Chromium, headless, driven by Playwright.

    Module-scoped: Playwright's sync API keeps its event loop marked running in
    this thread while it is open, which would break the async tests of other modules.

    Tests open their contexts with ``bypass_csp=True``: Playwright evaluates the string
    predicates of ``wait_for_function`` with eval, which the gateway's CSP forbids (as it
    should). That the pages themselves run under the CSP is ``test_csp_browser.py``'s job.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def worker(gateway):
    """A real `gui-recorder worker` process on the gateway's database and buckets."""
    import subprocess
    import sys

    from gui_recorder.cli import settings_env

    log = open(Path(gateway.settings.var_dir) / "worker.log", "ab")
    env = {**os.environ, **settings_env(gateway.settings), "GUI_RECORDER_WORKER_LEASE_SECONDS": "5",
           "GUI_RECORDER_TIERING_INTERVAL_SECONDS": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "gui_recorder.cli", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    yield proc
    proc.terminate()
    proc.wait(30)
    log.close()


def wait_for(check, timeout: float = 120, interval: float = 0.5, what: str = "condition"):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def run_async(coro):
    """Run a coroutine from a sync test that holds the Playwright browser (its loop owns this thread)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def directory(tmp_path_factory):
    """A real OpenLDAP slapd on a free loopback port with the test tree (tests/support/slapd.py)."""
    from support.slapd import Slapd

    with Slapd(tmp_path_factory.mktemp("slapd")) as info:
        yield info


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """A real OpenID Connect provider (django-oauth-toolkit) in its own process (tests/support/oidc.py)."""
    from support.oidc import OidcProvider

    with OidcProvider(tmp_path_factory.mktemp("oidc")) as info:
        yield info
