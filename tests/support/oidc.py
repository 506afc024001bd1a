"""The real OpenID Connect provider of the SSO tests (tests/support/oidc_provider), as a process.

django-oauth-toolkit 3.4 with OIDC on: discovery, a JWKS with the RSA key made here, ID tokens
signed RS256, the authorization-code flow with PKCE required, and a login page of its own. It is
reached as ``localhost`` while the gateway is ``127.0.0.1``: two sites, as a real SSO is.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gui_recorder.stack.process import Managed, free_port

SUPPORT = Path(__file__).resolve().parent
# username -> groups at the provider. `sso-guest` is in a group mapped to no role.
USERS = {"sso-anna": ["sso-auditors"], "sso-ben": ["sso-vendors"], "sso-chef": ["sso-admins", "sso-vendors"],
         "sso-guest": ["visitors"], "sso-dup": ["sso-vendors"]}


@dataclass
class ProviderInfo:
    issuer: str
    client_id: str
    client_secret: str
    gateway_port: int  # the port the browser test's gateway must listen on (its callback is registered)
    passwords: dict[str, str] = field(default_factory=dict)
    signing_key_pem: str = ""  # the provider's own ID-token key, for tests that forge tokens it would sign

    @property
    def redirect_uris(self) -> list[str]:
        return [f"http://127.0.0.1:{self.gateway_port}/api/auth/oidc/callback",
                "http://gateway.test/api/auth/oidc/callback"]


class OidcProvider:
    def __init__(self, root: Path):
        self.root = root
        self.proc: Managed | None = None

    def __enter__(self) -> ProviderInfo:
        port = free_port()
        info = ProviderInfo(issuer=f"http://localhost:{port}/o", client_id="gui-recorder-" + secrets.token_hex(4),
                            client_secret=secrets.token_urlsafe(24), gateway_port=free_port(),
                            passwords={u: f"{u}-{secrets.token_urlsafe(8)}" for u in USERS})
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        info.signing_key_pem = key
        users = {u: {"password": info.passwords[u], "email": f"{u}@example.org", "groups": g} for u, g in USERS.items()}
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")])),
               "DJANGO_SETTINGS_MODULE": "oidc_provider.settings", "OIDC_PROVIDER_DATA": str(self.root),
               "OIDC_PROVIDER_SECRET": secrets.token_urlsafe(32), "OIDC_PROVIDER_RSA_KEY": key,
               "OIDC_PROVIDER_USERS": json.dumps(users), "OIDC_CLIENT_ID": info.client_id,
               "OIDC_CLIENT_SECRET": info.client_secret, "OIDC_REDIRECT_URIS": " ".join(info.redirect_uris)}
        self.proc = Managed("oidc-provider", [sys.executable, "-m", "oidc_provider.serve", f"127.0.0.1:{port}"],
                            self.root / "logs", env)
        discovery = info.issuer + "/.well-known/openid-configuration"
        self.proc.wait_ready(lambda: _ok(discovery), timeout=90)
        self.info = info
        return info

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.stop()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
