"""The words every part of gui-recorder shares, defined once.

Roles, the capabilities each role holds, and the statuses a session can end
in. Python code imports these; the web pages get them from ``/api/auth/me``
(the signed-in user's capabilities), never from their own copies. Adding a
role or a capability is a change to ``ROLE_CAPABILITIES`` and nothing else.
"""

from __future__ import annotations

import enum

# Tags on connections, users and groups (access grants and guardrail scopes match on them).
TAG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VENDOR = "vendor"
    AUDITOR = "auditor"


class Capability(enum.StrEnum):
    """What a route needs. Each route declares one (or is explicitly public)."""

    SESSION_VIEW_OWN = "session.view_own"  # the rows of your own sessions
    SESSION_VIEW_ALL = "session.view_all"  # every session's row, recording, media and text
    SESSION_WATCH = "session.watch"  # join a live session read-only
    SESSION_TERMINATE = "session.terminate"  # end someone else's live session
    SESSION_REVIEW = "session.review"  # mark a session reviewed
    SESSION_DELETE = "session.delete"  # forget a session (objects, media, index) before its time
    LEGAL_HOLD = "session.legal_hold"  # keep a session past its retention
    SEARCH = "search"  # search typed and screen text across sessions
    EXPORT = "export"  # download an evidence bundle
    CONNECTION_USE = "connection.use"  # open the connections granted to you
    CONNECTION_ADMIN = "connection.admin"  # create, change and delete connections
    USER_ADMIN = "user.admin"  # manage accounts
    AUDIT_READ = "audit.read"  # read and export the audit trail
    OPS_READ = "ops.read"  # storage, growth and coverage figures
    POLICY_ADMIN = "policy.admin"  # create, change and delete guardrail policies (issue 14)
    ALERT_READ = "alert.read"  # list the alerts the guardrails raised
    ALERT_ACK = "alert.ack"  # acknowledge an alert, with a note
    ACCESS_APPROVE = "access.approve"  # approve or deny just-in-time access requests
    UNMASK = "text.unmask"  # read the secrets masked in text, search and exports (audited; admins only)


_OVERSIGHT = {Capability.SESSION_VIEW_ALL, Capability.SESSION_WATCH, Capability.SESSION_TERMINATE,
              Capability.SESSION_REVIEW, Capability.SEARCH, Capability.EXPORT, Capability.ALERT_READ,
              Capability.ALERT_ACK}

ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.AUDITOR: frozenset(_OVERSIGHT | {Capability.CONNECTION_USE, Capability.SESSION_VIEW_OWN}),
    Role.OPERATOR: frozenset({Capability.CONNECTION_USE, Capability.SESSION_VIEW_OWN, Capability.OPS_READ}),
    Role.VENDOR: frozenset({Capability.CONNECTION_USE, Capability.SESSION_VIEW_OWN}),
}

ROLES: tuple[str, ...] = tuple(r.value for r in Role)


def capabilities_of(role: str) -> frozenset[Capability]:
    """The capabilities of a role; an unknown role (a row from a newer build) has none."""
    try:
        return ROLE_CAPABILITIES[Role(role)]
    except ValueError:
        return frozenset()


def has_capability(role: str, capability: Capability) -> bool:
    return capability in capabilities_of(role)


class SessionStatus(enum.StrEnum):
    """How a session stands. Every status but ``active`` is final and comes with a reason."""

    ACTIVE = "active"  # being relayed now
    ENDED = "ended"  # the user, the target or the gateway's shutdown ended it normally
    FAILED = "failed"  # something broke: the target, guacd, the recording, the gateway
    TERMINATED = "terminated"  # ended on purpose by an auditor, a policy or a security violation
    INTERRUPTED = "interrupted"  # the gateway died while it ran; closed at the next start-up
    REFUSED = "refused"  # never reached the target: bad token, recording or guacd unavailable
    TAMPERED = "tampered"  # its sealed recording failed its checks when read (issue 13); the reason names the segment


SESSION_STATUSES: tuple[str, ...] = tuple(s.value for s in SessionStatus)
FINAL_STATUSES: tuple[str, ...] = tuple(s.value for s in SessionStatus if s is not SessionStatus.ACTIVE)


class Protocol(enum.StrEnum):
    """Remote-desktop protocols the gateway brokers (guacd plugins). Adding one: docs/architecture.md."""

    RDP = "rdp"
    VNC = "vnc"
    SSH = "ssh"  # a terminal: its printed output is indexed from guacd's typescript, not OCR


PROTOCOLS: tuple[str, ...] = tuple(p.value for p in Protocol)


class UserSource(enum.StrEnum):
    """Where an account's sign-in is checked. External accounts have no password here."""

    LOCAL = "local"  # a password hashed in our database
    LDAP = "ldap"  # a bind against the directory; groups from it
    OIDC = "oidc"  # an OpenID Connect provider; groups from its claims


USER_SOURCES: tuple[str, ...] = tuple(s.value for s in UserSource)


class JobKind(enum.StrEnum):
    """Background work queued for every stored recording."""

    RENDER = "render"  # video, thumbnails, poster
    INDEX = "index"  # typed and screen text into the search index


class Tier(enum.StrEnum):
    """Where a session's objects are: the default tiers' names, and ``deleted``.

    The tiers themselves are a setting (``Settings.tiers``, ordered; a third one is a
    line of configuration): HOT and COLD are the names of the default two, and what
    rows written before tiers were configurable hold. DELETED is not a tier but the
    final state: the session was forgotten in every tier (``sessions.forget``).
    """

    HOT = "hot"  # the default first tier: where recordings and media are written
    COLD = "cold"  # the default second tier: sessions older than its after_days
    DELETED = "deleted"  # forgotten: no object left in any tier


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # leased by a worker; taken again when the lease lapses
    DONE = "done"
    FAILED = "failed"  # after the last attempt


class RuleSource(enum.StrEnum):
    """What a guardrail rule reads (issue 14)."""

    TYPED = "typed"  # the line being typed, decoded in the relay as it flows
    SCREEN = "screen"  # text the live OCR pass finds on screen
    CLIPBOARD = "clipboard"  # text the browser puts on the remote clipboard
    ANY = "any"


class RuleAction(enum.StrEnum):
    """What a rule does when it matches. Each action also raises an alert."""

    ALERT = "alert"  # an alert row, nothing else
    NOTIFY = "notify"  # an alert, a webhook POST (JSON) and a syslog line
    BLOCK = "block"  # typed only: the Enter that would submit the line is not forwarded
    TERMINATE = "terminate"  # the session is ended


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


HIGH_RISK_SEVERITIES: tuple[str, ...] = (Severity.HIGH.value, Severity.CRITICAL.value)


class AccessRequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class MatchKind(enum.StrEnum):
    WORDS = "words"  # any of the words or phrases, case-insensitive, on word boundaries
    REGEX = "regex"  # one regular expression, checked at save time, evaluated with a time limit
    PRESET = "preset"  # a shipped list (guardrails.rules.PRESETS)


def vocabulary() -> dict[str, list[str]]:
    """Every vocabulary as plain lists, for the web pages (``GET /api/vocabulary``)."""
    return {"roles": list(ROLES), "capabilities": [c.value for c in Capability],
            "session_statuses": list(SESSION_STATUSES), "final_statuses": list(FINAL_STATUSES),
            "protocols": list(PROTOCOLS), "job_kinds": [k.value for k in JobKind],
            "user_sources": list(USER_SOURCES),
            "rule_sources": [r.value for r in RuleSource], "rule_actions": [a.value for a in RuleAction],
            "severities": [s.value for s in Severity], "match_kinds": [m.value for m in MatchKind],
            "role_capabilities": {r.value: sorted(c.value for c in caps) for r, caps in ROLE_CAPABILITIES.items()}}
