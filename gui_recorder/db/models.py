"""The gateway's tables: accounts, groups and grants, connections, tokens, sessions and the audit trail.

Times are timezone-aware UTC everywhere in Python (``UTCDateTime``); SQLite has
no time zones, so they are stored there as naive UTC, which still sorts and
compares correctly as text.

JSON columns are replaced, never mutated in place: SQLAlchemy only notices a
new value, not a changed dict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gui_recorder.vocabulary import FINAL_STATUSES, ROLES, SESSION_STATUSES  # noqa: F401 - re-exported


class UTCDateTime(TypeDecorator):
    """A datetime that goes in and comes out timezone-aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive time is ambiguous; refusing it here catches the bug at its source.
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # Where the sign-in is checked (vocabulary.UserSource); external accounts hold no usable password hash.
    # Server defaults on columns added after the first release: ``Database.create_all`` adds them to an
    # existing table, and the rows already there need a value.
    source: Mapped[str] = mapped_column(String(8), default="local", server_default="local")
    last_sign_in_at: Mapped[datetime | None]
    # Tags this account's oversight is limited to (with its groups'); empty: every session (gateway/scope.py).
    scope_tags: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    # An external account's groups as its directory or provider last said (replaced at each sign-in).
    external_groups: Mapped[list[str]] = mapped_column(default=list, server_default="[]")


class Group(Base):
    """A set of users that grants and auditor scopes can name (local, or mapped from LDAP/OIDC groups)."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    scope_tags: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)


class Grant(Base):
    """A user or a group may open a connection, or every connection with a tag (exactly one of each pair)."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE", onupdate="CASCADE"), index=True)
    tag: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(64))


class Connection(Base):
    """A target a user may open. ``credentials`` is a Fernet token, never plaintext."""

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    protocol: Mapped[str] = mapped_column(String(8))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    credentials: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    allowed_users: Mapped[list[str]] = mapped_column(default=list)
    allowed_roles: Mapped[list[str]] = mapped_column(default=list)
    recording_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What grants and auditor scopes name (``finance``, ``vendor-acme``): lower-case words.
    tags: Mapped[list[str]] = mapped_column(default=list, server_default="[]")


class AuthToken(Base):
    """A login token. Only its SHA-256 is stored: a copy of the DB opens nothing."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    client_addr: Mapped[str | None] = mapped_column(String(64))


class TunnelToken(Base):
    """A one-time ticket for one WebSocket tunnel to one connection, by one user."""

    __tablename__ = "tunnel_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE", onupdate="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class WatchToken(Base):
    """A one-time ticket to watch one live session, by one auditor: in the database, so the gateway
    that issues it and the one the WebSocket reaches behind a load balancer need not be the same."""

    __tablename__ = "watch_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class TerminationRequest(Base):
    """An auditor on one gateway asked to end a session that another gateway relays; the owner
    polls for these (``gateway_control_poll_seconds``) and marks each delivered."""

    __tablename__ = "termination_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    gateway_id: Mapped[str] = mapped_column(String(64), index=True)
    by: Mapped[str] = mapped_column(String(600))
    requested_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)


class Session(Base):
    """One recorded session. Names are copied so history survives deletions."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_status_started", "status", "started_at"),
        Index("ix_sessions_user_started", "user_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64), index=True)
    connection_id: Mapped[str] = mapped_column(String(64), index=True)
    connection_name: Mapped[str] = mapped_column(String(128))
    protocol: Mapped[str] = mapped_column(String(8))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    bytes_to_client: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_from_client: Mapped[int] = mapped_column(BigInteger, default=0)
    end_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    guacd_connection_id: Mapped[str | None] = mapped_column(String(64))
    # Which gateway relays it and on which guacd (host:port): another gateway joins it there to
    # watch it, and asks the owner to end it; only the owner marks it interrupted after a crash.
    gateway_id: Mapped[str | None] = mapped_column(String(64), index=True)
    guacd_address: Mapped[str | None] = mapped_column(String(300))
    recording: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recording_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    # Epoch milliseconds of the first recorded timestamp: guacd's are monotonic only.
    wall_start: Mapped[int | None] = mapped_column(BigInteger)
    # Set by the render worker once video, thumbnails and poster are all stored.
    video: Mapped[dict[str, Any]] = mapped_column(default=dict)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    tier: Mapped[str] = mapped_column(String(8), default="hot")  # hot|cold|deleted


class Review(Base):
    """An auditor's statement that a session was reviewed, with a comment."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    reviewed_by: Mapped[str] = mapped_column(String(64))
    reviewed_at: Mapped[datetime]
    comment: Mapped[str] = mapped_column(Text, default="")


class Job(Base):
    """Background work on a session (render, index). Leased, so a killed worker's job is retried."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "state", "lease_until"),
                      Index("ux_jobs_kind_session", "kind", "session_id", unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    seconds: Mapped[float | None]


class StorageSample(Base):
    """Bytes and objects in one tier at one moment: the history behind the capacity dashboard."""

    __tablename__ = "storage_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    tier: Mapped[str] = mapped_column(String(8))
    bytes: Mapped[int] = mapped_column(BigInteger)
    objects: Mapped[int] = mapped_column(Integer)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(255))
    client_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The tamper-evident chain (issue 13, item 4), filled in by db/audit_chain.py as the row is flushed:
    # seq is the event's place in the one chain of all processes, hash covers the event and prev_hash.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link (one row): the lock every append takes, and what a truncated tail is checked
    against."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class TotpSecret(Base):
    """A user's enrolled TOTP second factor. The secret is sealed (Fernet, like target credentials);
    ``last_step`` is the newest 30 s step used, so a code seen once is refused after (no replay)."""

    __tablename__ = "totp_secrets"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    enrolled_at: Mapped[datetime]
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)


class RecoveryCode(Base):
    """One single-use recovery code; only its keyed SHA-256 is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


class Policy(Base):
    """A guardrail rule (issue 14): what to look for, where, for whom, and what to do.

    ``match_value`` holds the words (a list), the regex (a one-item list) or the preset's name
    (a one-item list); ``scope`` holds ``connections``, ``roles`` and ``users`` lists (empty: all).
    ``version`` grows at each change, so an alert names the rule as it was.
    """

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    match_kind: Mapped[str] = mapped_column(String(16))
    match_value: Mapped[list[str]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(16))
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    severity: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Alert(Base):
    """A rule that matched in a session: the text, the moment, what was done; acknowledged with a note.

    ``enforced`` is for ``terminate`` raised outside the gateway (the worker's screen pass): the
    gateway ends the session and sets it.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_session", "session_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    session_id: Mapped[str] = mapped_column(String(36))
    rule_id: Mapped[int | None] = mapped_column(Integer)
    rule_name: Mapped[str] = mapped_column(String(128), index=True)
    rule_version: Mapped[int] = mapped_column(Integer, default=1)
    severity: Mapped[str] = mapped_column(String(16), index=True)
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    username: Mapped[str] = mapped_column(String(64), index=True)
    connection_id: Mapped[str] = mapped_column(String(64), index=True)
    offset_ms: Mapped[int | None] = mapped_column(BigInteger)  # in the recording, for the player's marker
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    enforced: Mapped[bool] = mapped_column(Boolean, default=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class AccessRequest(Base):
    """Just-in-time access (issue 14): a user asks for a window on a connection that requires approval."""

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_user_connection", "username", "connection_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # vocabulary.AccessRequestStatus
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class ConsentAcceptance(Base):
    """A user accepted a connection's notice (issue 14): who, when, which text; tied to the session it opened.

    Written when the tunnel token is issued (``token_hash`` is that token's SHA-256), given its
    ``session_id`` when the token opens the tunnel.
    """

    __tablename__ = "consent_acceptances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime]
    client_addr: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), index=True)
    session_id: Mapped[str | None] = mapped_column(String(36), index=True)
