"""Stored policies (``policies`` table): validated on save, compiled into the rules a session runs.

Routes are ``gateway.policies_api``; this module is the domain both the
gateway (typed rules, per session) and the worker (screen rules) read.
A session takes the rules in force when it opens.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select

from gui_recorder.db import Database
from gui_recorder.db.models import Connection, Policy
from gui_recorder.errors import ConflictError, NotFoundError
from gui_recorder.guardrails.rules import Rule, RuleSet, Scope, check_combination, compile_pattern
from gui_recorder.vocabulary import TAG_PATTERN, MatchKind, RuleAction, RuleSource, Severity


class ScopeIn(BaseModel):
    connections: list[str] = Field(default_factory=list, max_length=500)
    roles: list[str] = Field(default_factory=list, max_length=20)
    users: list[str] = Field(default_factory=list, max_length=500)
    tags: list[Annotated[str, StringConstraints(pattern=TAG_PATTERN)]] = Field(
        default_factory=list, max_length=50, description="connections carrying any of these tags")


class PolicyIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    match_kind: MatchKind
    match_value: list[str] = Field(min_length=1, max_length=200)
    source: RuleSource = RuleSource.ANY
    scope: ScopeIn = Field(default_factory=ScopeIn)
    severity: Severity = Severity.MEDIUM
    action: RuleAction = RuleAction.ALERT
    enabled: bool = True


class PolicyOut(PolicyIn):
    id: int
    version: int
    created_by: str
    created_at: str
    updated_at: str


def view(row: Policy) -> PolicyOut:
    return PolicyOut(id=row.id, name=row.name, match_kind=row.match_kind, match_value=row.match_value,
                     source=row.source, scope=ScopeIn(**Scope.from_dict(row.scope).to_dict()),
                     severity=row.severity, action=row.action, enabled=row.enabled, version=row.version,
                     created_by=row.created_by, created_at=row.created_at.isoformat(),
                     updated_at=row.updated_at.isoformat())


def validate(spec: PolicyIn, timeout_ms: float) -> None:
    """``PolicyRuleError`` (422) when the rule cannot be saved: it says what to fix."""
    check_combination(spec.source, spec.action)
    compile_pattern(spec.match_kind, spec.match_value, timeout_ms)


def list_policies(db: Database) -> list[Policy]:
    with db.session() as s:
        return list(s.scalars(select(Policy).order_by(Policy.id)))


def get_policy(db: Database, policy_id: int) -> Policy:
    with db.session() as s:
        row = s.get(Policy, policy_id)
    if row is None:
        raise NotFoundError(f"no policy {policy_id}")
    return row


def create_policy(db: Database, spec: PolicyIn, by: str, timeout_ms: float) -> Policy:
    validate(spec, timeout_ms)
    now = db.now()
    with db.session() as s:
        if s.scalar(select(Policy).where(Policy.name == spec.name)) is not None:
            raise ConflictError(f"a policy named {spec.name!r} exists; use PUT to change it")
        row = Policy(name=spec.name, match_kind=spec.match_kind, match_value=list(spec.match_value),
                     source=spec.source, scope=spec.scope.model_dump(), severity=spec.severity,
                     action=spec.action, enabled=spec.enabled, version=1, created_by=by, created_at=now,
                     updated_at=now)
        s.add(row)
        s.flush()
        return row


def update_policy(db: Database, policy_id: int, spec: PolicyIn, timeout_ms: float) -> Policy:
    validate(spec, timeout_ms)
    with db.session() as s:
        row = s.get(Policy, policy_id)
        if row is None:
            raise NotFoundError(f"no policy {policy_id}")
        other = s.scalar(select(Policy).where(Policy.name == spec.name, Policy.id != policy_id))
        if other is not None:
            raise ConflictError(f"another policy is named {spec.name!r}")
        row.name, row.match_kind, row.match_value = spec.name, spec.match_kind, list(spec.match_value)
        row.source, row.scope, row.severity = spec.source, spec.scope.model_dump(), spec.severity
        row.action, row.enabled = spec.action, spec.enabled
        row.version += 1
        row.updated_at = db.now()
        s.flush()
        return row


def delete_policy(db: Database, policy_id: int) -> None:
    with db.session() as s:
        row = s.get(Policy, policy_id)
        if row is None:
            raise NotFoundError(f"no policy {policy_id}")
        s.delete(row)


def compile_row(row: Policy, timeout_ms: float) -> Rule:
    return Rule(name=row.name, pattern=compile_pattern(row.match_kind, row.match_value, timeout_ms),
                source=row.source, severity=row.severity, action=row.action, scope=Scope.from_dict(row.scope),
                id=row.id, version=row.version)


def rules_in_force(db: Database, timeout_ms: float) -> RuleSet:
    """Every enabled policy, compiled (each was validated when saved)."""
    with db.session() as s:
        rows = list(s.scalars(select(Policy).where(Policy.enabled.is_(True)).order_by(Policy.id)))
    return RuleSet([compile_row(r, timeout_ms) for r in rows], timeout_ms)


def stamp(db: Database) -> tuple:
    """Changes whenever a policy is created, changed or deleted (count, newest id, latest change)."""
    from sqlalchemy import func

    with db.session() as s:
        return tuple(s.execute(select(func.count(), func.max(Policy.id), func.max(Policy.updated_at))).one())


def connection_tags(db: Database, connection_id: str) -> tuple[str, ...]:
    """The tags a connection carries now (what a rule's ``tags`` scope matches)."""
    with db.session() as s:
        row = s.get(Connection, connection_id)
        return tuple(row.tags or ()) if row is not None else ()


def rules_for_session(db: Database, timeout_ms: float, username: str, role: str, connection_id: str,
                      tags: tuple[str, ...] = ()) -> RuleSet:
    return rules_in_force(db, timeout_ms).scoped(username, role, connection_id, tags)
