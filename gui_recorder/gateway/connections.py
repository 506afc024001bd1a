"""Connections: what users may open, with credentials sealed at rest (the domain; routes in ``registry``).

Credentials (the login fields and every secret-bearing guacd parameter, see
``credentials``) are write-only: nothing returns them, not even to admins, who
see only whether each is set; they are decrypted only to build guacd's
parameters (``definition_for``), inside the gateway. Grants: a connection is
opened by users named on it, by roles named on it, by whoever holds
``connection.admin`` (``may_open``), and by the grants of ``grants`` (to a
user or group, of the connection or of one of its ``tags``). No FastAPI here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from sqlalchemy import select

from gui_recorder.db import Connection, Database, User
from gui_recorder.errors import NotFoundError
from gui_recorder.gateway import credentials
from gui_recorder.gateway.filter import ClientPolicy
from gui_recorder.gateway.secrets_box import SecretBox
from gui_recorder.gateway.users import MAX_TAGS, TAG_PATTERN
from gui_recorder.guacd import ConnectionDefinition
from gui_recorder.settings import OCR_LANGUAGES_PATTERN, Settings
from gui_recorder.vocabulary import Capability, has_capability

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"

# A host name, IPv4 or IPv6 address: nothing else belongs in guacd's `hostname`.
HOST_PATTERN = r"^[A-Za-z0-9._:\[\]-]{1,255}$"
# guacd's parameter names are lower-case words joined by dashes (`ignore-cert`, `color-depth`).
PARAMETER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_PARAMETERS = 64
MAX_PARAMETER_VALUE = 4096
MAX_GRANTS = 1000
# Parameters the registry owns: a stored `parameters` entry must not override them.
_RESERVED = {"hostname", "port", "username", "password", "domain", "recording-path", "recording-name",
             "create-recording-path", "read-only",
             # The gateway reads SSH output from guacd's typescript (gateway/ssh.py): nowhere else.
             "typescript-path", "typescript-name", "create-typescript-path"}
Username = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Secret = Annotated[str, StringConstraints(max_length=1024)]
# A secret parameter may be a private key (SSH's `private-key`: an RSA 4096 PEM is ~3.3 kB).
SecretParameter = Annotated[str, StringConstraints(max_length=16384)]


class RecordingPolicy(BaseModel):
    """What a session on this connection may do, and what happens when its recording fails."""

    model_config = ConfigDict(extra="forbid")

    fail_closed: bool = Field(True, description="End the session when its recording cannot be written")
    allow_clipboard: bool = True
    allow_file_transfer: bool = False
    retention_days: int | None = Field(None, ge=1, le=36500, description="Overrides the global retention")
    keep_transferred_files: bool = Field(False, description="Store each file uploaded or downloaded in a "
                                                            "session as an evidence object beside its recording")
    ocr_languages: str | None = Field(None, pattern=OCR_LANGUAGES_PATTERN,
                                      description="Tesseract languages of this target's screens (e.g. "
                                                  "deu+eng, chi_sim+eng); the ocr_languages setting when unset")
    require_approval: bool = Field(False, description="Tunnel tokens only inside an approved access window "
                                                      "(issue 14, just-in-time access)")
    consent_text: str | None = Field(None, max_length=4000,
                                     description="A notice the user must accept before each session (issue 14)")
    four_eyes: bool = Field(False, description="The user's input reaches the target only while an approver "
                                               "(access.approve) watches the session live (issue 14)")


DEFAULT_POLICY = RecordingPolicy().model_dump()


class ConnectionIn(BaseModel):
    """A connection as an admin writes it.

    ``username``/``password``/``domain`` and ``secret_parameters`` (guacd's
    ``gateway-password``, ``sftp-private-key``, ...: any secret-bearing
    parameter, which ``parameters`` refuses) are write-only and sealed. On an
    update, ``null`` (or leaving one out) keeps the stored value, since the
    admin cannot read it back; an empty string clears it.

    Except when the endpoint changes: an update that changes ``protocol``,
    ``host``, ``port`` or a parameter that says where guacd connects
    (``gateway-hostname``, ``sftp-hostname``, ...) CLEARS every stored
    credential it does not give anew. Stored credentials never follow a
    connection to another host (issue 10: a PUT with another host and
    ``password: null`` sent the old password there). The response shows what
    is left (``has_password`` ...), and the audit event says they were cleared.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    protocol: Literal["rdp", "vnc", "ssh"]
    host: str = Field(pattern=HOST_PATTERN)
    port: int = Field(ge=1, le=65535)
    username: Secret | None = None
    password: Secret | None = None
    domain: Secret | None = None
    parameters: dict[str, str] = Field({}, max_length=MAX_PARAMETERS,
                                       description="Extra guacd parameters, e.g. security, ignore-cert")
    secret_parameters: dict[str, SecretParameter | None] = Field(
        {}, max_length=MAX_PARAMETERS,
        description="Secret-bearing guacd parameters (gateway-password, sftp-private-key...): sealed, write-only")
    allowed_users: list[Username] = Field([], max_length=MAX_GRANTS)
    allowed_roles: list[Literal["admin", "operator", "vendor", "auditor"]] = []
    recording_policy: RecordingPolicy = RecordingPolicy()
    tags: list[Annotated[str, StringConstraints(pattern=TAG_PATTERN)]] = Field(
        [], max_length=MAX_TAGS, description="What grants and auditor scopes name (finance, vendor-acme)")

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not PARAMETER_NAME.match(name):
                raise ValueError(f"{name[:80]!r} is not a guacd parameter name")
            if name in _RESERVED:
                raise ValueError(f"the parameter {name!r} is set by the registry itself")
            if credentials.is_secret_parameter(name):
                raise ValueError(f"the parameter {name!r} holds a secret: give it in secret_parameters, "
                                 "where it is sealed and never shown again")
            if len(item) > MAX_PARAMETER_VALUE:
                raise ValueError(f"the parameter {name!r} is longer than {MAX_PARAMETER_VALUE} characters")
        return value

    @field_validator("secret_parameters")
    @classmethod
    def _secret_parameters(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for name in value:
            if not PARAMETER_NAME.match(name):
                raise ValueError(f"{name[:80]!r} is not a guacd parameter name")
            if name in _RESERVED:
                raise ValueError(f"the parameter {name!r} is set by the registry itself (use username/password/"
                                 "domain for the login)")
        return value

    @model_validator(mode="after")
    def _not_both(self) -> "ConnectionIn":
        both = sorted(set(self.parameters) & set(self.secret_parameters))
        if both:
            raise ValueError(f"{', '.join(both)} given both as a parameter and as a secret parameter")
        return self


class ConnectionOut(BaseModel):
    id: str
    name: str
    protocol: str


class ConnectionAdminOut(ConnectionOut):
    """What an admin reads back: whether each credential is set, never its value."""

    host: str
    port: int
    has_username: bool
    has_password: bool
    has_domain: bool
    parameters: dict[str, str]
    secret_parameters: list[str] = Field(description="Names of the sealed parameters that are set")
    allowed_users: list[str]
    allowed_roles: list[str]
    recording_policy: RecordingPolicy
    tags: list[str] = []


def may_open(user: User, connection: Connection) -> bool:
    # Whoever administers connections may open every one; others need a grant by name or role.
    return (has_capability(user.role, Capability.CONNECTION_ADMIN)
            or user.username in (connection.allowed_users or []) or user.role in (connection.allowed_roles or []))


def ensure_connection(db: Database, settings: Settings, spec: ConnectionIn) -> Connection:
    """Create or replace a connection (idempotent).

    Credentials given as ``None`` keep their stored value, unless the endpoint
    changes (see ``ConnectionIn``); ``row.credentials_cleared`` (not stored)
    says whether stored ones were dropped, for the audit event.
    """
    box = SecretBox(settings.secret_key.get_secret_value())
    logins = {"username": spec.username, "password": spec.password, "domain": spec.domain}
    policy = spec.recording_policy.model_dump()
    now = db.now()
    with db.session() as s:
        row = s.get(Connection, spec.id)
        if row is None:
            row = Connection(id=spec.id, created_at=now)
            s.add(row)
            stored, moved = {}, False
        else:
            stored = box.open(row.credentials)
            stored_params = dict(row.parameters or {})
            # A row written before secret parameters were sealed: its secrets count as stored ones.
            legacy = {k: stored_params.pop(k) for k in list(stored_params) if credentials.is_secret_parameter(k)}
            if legacy:
                stored = {**stored, "parameters": {**legacy, **(stored.get("parameters") or {})}}
            moved = (credentials.endpoint_of(row.protocol, row.host, row.port, stored_params)
                     != credentials.endpoint_of(spec.protocol, spec.host, spec.port, spec.parameters))
        merged = credentials.merge(stored, logins, dict(spec.secret_parameters), endpoint_changed=moved)
        secret = box.seal(merged)
        parameters = dict(spec.parameters)
        # An SSH host key pinned at first use (gateway/host_keys.py) stays through edits that do not give
        # one, unless the connection now points elsewhere.
        pinned = (row.parameters or {}).get("host-key")
        if pinned and "host-key" not in parameters and not moved:
            parameters["host-key"] = pinned
        row.name, row.protocol, row.host, row.port = spec.name, spec.protocol, spec.host, spec.port
        row.credentials, row.parameters, row.recording_policy = secret, parameters, policy
        row.allowed_users, row.allowed_roles = list(spec.allowed_users), list(spec.allowed_roles)
        row.tags = sorted(set(spec.tags))
        row.updated_at = now
        s.flush()
        cleared = moved and any(credentials.summary(stored).values())
    row.credentials_cleared = cleared  # type: ignore[attr-defined]  # for the caller's audit event, not a column
    return row


def seal_plaintext_secrets(db: Database, settings: Settings) -> int:
    """At start-up: move secret-bearing parameters stored in plaintext (before they were sealed) into the seal.

    Returns how many connections were rewritten.
    """
    box = SecretBox(settings.secret_key.get_secret_value())
    changed = 0
    with db.session() as s:
        for row in s.scalars(select(Connection)):
            params = dict(row.parameters or {})
            legacy = {k: params.pop(k) for k in list(params) if credentials.is_secret_parameter(k)}
            if not legacy:
                continue
            creds = box.open(row.credentials)
            creds["parameters"] = {**legacy, **(creds.get("parameters") or {})}
            row.credentials, row.parameters = box.seal(creds), params
            changed += 1
    return changed


def definition_for(connection: Connection, settings: Settings, policy: ClientPolicy) -> ConnectionDefinition:
    """guacd's parameters for a stored connection, credentials decrypted here and only here."""
    creds = SecretBox(settings.secret_key.get_secret_value()).open(connection.credentials)
    params = {**connection.parameters, **(creds.get("parameters") or {}),
              "hostname": connection.host, "port": str(connection.port)}
    for name in credentials.LOGIN_FIELDS:
        if creds.get(name):
            params[name] = creds[name]
    if not policy.allow_clipboard:
        params.update({"disable-copy": "true", "disable-paste": "true"})
    if not policy.allow_file_transfer:
        params.update({"enable-drive": "false", "enable-sftp": "false"})
    return ConnectionDefinition(connection.protocol, params)


def get_connection(db: Database, connection_id: str) -> Connection:
    with db.session() as s:
        row = s.get(Connection, connection_id)
    if row is None:
        raise NotFoundError(f"no connection {connection_id!r}")
    return row


def admin_view(row: Connection, settings: Settings) -> ConnectionAdminOut:
    creds = SecretBox(settings.secret_key.get_secret_value()).open(row.credentials)
    flags = credentials.summary(creds)
    # A secret still stored in plaintext (a row older than the seal) is named, never shown.
    plain = {k: v for k, v in (row.parameters or {}).items() if not credentials.is_secret_parameter(k)}
    legacy = [k for k in (row.parameters or {}) if credentials.is_secret_parameter(k)]
    flags["secret_parameters"] = sorted(set(flags["secret_parameters"]) | set(legacy))
    return ConnectionAdminOut(id=row.id, name=row.name, protocol=row.protocol, host=row.host, port=row.port,
                              **flags, parameters=plain, allowed_users=row.allowed_users,
                              allowed_roles=row.allowed_roles, tags=list(row.tags or []),
                              recording_policy=RecordingPolicy.model_validate(
                                  {k: v for k, v in (row.recording_policy or {}).items() if k in DEFAULT_POLICY}))


def all_connections(db: Database) -> list[Connection]:
    with db.session() as s:
        return list(s.scalars(select(Connection).order_by(Connection.name)))


def exists(db: Database, connection_id: str) -> bool:
    with db.session() as s:
        return s.get(Connection, connection_id) is not None


def remove(db: Database, connection_id: str) -> None:
    with db.session() as s:
        row = s.get(Connection, connection_id)
        if row is None:
            raise NotFoundError(f"no connection {connection_id!r}")
        s.delete(row)
