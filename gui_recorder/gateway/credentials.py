"""Which guacd parameters are credentials, and what an edit keeps of the stored ones.

Credentials are sealed (``SecretBox``) as one JSON object::

    {"username": ..., "password": ..., "domain": ..., "parameters": {"gateway-password": ..., ...}}

They are write-only: an admin can set or clear them, never read them back, so
an edit that leaves one out keeps it. That is safe only while they keep going
to the place they were meant for: issue 10 showed an admin PUTting another
host with ``password: null`` and receiving the stored password (a fake VNC
server captured the DES response). So when anything that decides where
credentials are sent changes, nothing stored survives the edit.
"""

from __future__ import annotations

import re

# Login fields of the connection itself (guacd's `username`, `password`, `domain`).
LOGIN_FIELDS = ("username", "password", "domain")

# guacd parameters that carry secret material or the identity it pairs with
# (guacd 1.3.0 and 1.6.0: src/protocols/{rdp,vnc,ssh,telnet,kubernetes}/settings.c).
SECRET_PARAMETERS = frozenset({
    "gateway-username", "gateway-password", "gateway-domain",  # RDP gateway
    "sftp-username", "sftp-password", "sftp-private-key", "sftp-passphrase",  # RDP/VNC SFTP
    "private-key", "passphrase",  # SSH
    "client-key",  # Kubernetes client certificate key
})
# A name guacd adds later is caught by its shape.
_SECRET_SHAPE = re.compile(r"(^|-)(password|passphrase|private-key|secret|client-key)$")

# Parameters that decide where the target or its side channels connect: credentials
# follow them, so changing one is changing the endpoint.
ENDPOINT_PARAMETERS = frozenset({"gateway-hostname", "gateway-port", "sftp-hostname", "sftp-port",
                                 "dest-host", "dest-port", "reverse-connect"})


def is_secret_parameter(name: str) -> bool:
    return name in SECRET_PARAMETERS or bool(_SECRET_SHAPE.search(name))


def endpoint_of(protocol: str, host: str, port: int, parameters: dict[str, str]) -> tuple:
    """Everything that decides where guacd will send the stored credentials."""
    return (protocol, host.lower(), int(port),
            tuple(sorted((k, v) for k, v in parameters.items() if k in ENDPOINT_PARAMETERS)))


def merge(stored: dict, logins: dict[str, str | None], secret_parameters: dict[str, str | None],
          endpoint_changed: bool) -> dict:
    """The credentials to seal after an edit.

    A value given replaces the stored one and an empty string clears it; ``None``
    (or leaving it out) keeps the stored one, unless the endpoint changed: then
    only what this request gives is kept.
    """
    base = {} if endpoint_changed else stored
    out: dict = {}
    for name in LOGIN_FIELDS:
        given = logins.get(name)
        value = base.get(name) if given is None else given
        if value:
            out[name] = value
    params = dict(base.get("parameters") or {})
    for name, given in secret_parameters.items():
        if given is None:
            continue
        if given:
            params[name] = given
        else:
            params.pop(name, None)
    if params:
        out["parameters"] = params
    return out


def summary(creds: dict) -> dict:
    """What the admin view may say about stored credentials: whether they are there, never what they are."""
    return {"has_username": bool(creds.get("username")), "has_password": bool(creds.get("password")),
            "has_domain": bool(creds.get("domain")),
            "secret_parameters": sorted((creds.get("parameters") or {}).keys())}
