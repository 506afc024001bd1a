"""A gateway on a real port for the sign-in tests, with the directory and the SSO provider configured.

Sign-in needs neither guacd nor the object store: the store points at a closed port (the gateway
starts anyway and says so in its log). Runs uvicorn in a thread, stopped at the end.
"""

from __future__ import annotations

import secrets
import threading
import time
from contextlib import contextmanager

import uvicorn

from gui_recorder.gateway.app import create_app
from gui_recorder.settings import Settings
from gui_recorder.stack.checks import http_ok
from gui_recorder.stack.process import free_port

LDAP_GROUP_ROLES = {"gr-admins": "admin", "gr-auditors": "auditor", "gr-vendors": "vendor"}
OIDC_GROUP_ROLES = {"sso-admins": "admin", "sso-auditors": "auditor", "sso-vendors": "vendor"}


def identity_settings(var_dir, port: int, directory=None, provider=None, **extra) -> Settings:
    values = dict(var_dir=var_dir, port=port, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused",
                  s3_endpoint=f"127.0.0.1:{free_port()}", admin_password="admin-" + secrets.token_hex(8))
    if directory is not None:
        values.update(ldap_url=directory.url, ldap_user_dn_template="uid={username}," + directory.people,
                      ldap_group_base=directory.groups, ldap_group_roles=LDAP_GROUP_ROLES)
    if provider is not None:
        values.update(oidc_issuer=provider.issuer, oidc_client_id=provider.client_id,
                      oidc_client_secret=provider.client_secret, oidc_group_roles=OIDC_GROUP_ROLES)
    return Settings(**{**values, **extra})


@contextmanager
def serve(settings: Settings):
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="identity-gateway", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}/"
    deadline = time.monotonic() + 30
    while not http_ok(url + "api/auth/providers"):  # health is 503 without the store
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(30)
