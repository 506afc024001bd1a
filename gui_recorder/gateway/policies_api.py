"""Routes of the guardrails: the admin API over policies, and the alerts (list, acknowledge).

Every change to a policy is audited with the rule as saved; an invalid rule is
a 422 that says what to fix (``PolicyRuleError``). A new rule applies to the
sessions opened after it is saved.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from gui_recorder.db import User
from gui_recorder.gateway import audit
from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.gateway.auth import client_addr, require_capability
from gui_recorder.gateway.services import ServicesDep
from gui_recorder.guardrails import alerts, kpis, policies
from gui_recorder.guardrails.policies import PolicyIn, PolicyOut
from gui_recorder.guardrails.rules import PRESETS
from gui_recorder.vocabulary import Capability, Severity

ADMIN = require_capability(Capability.POLICY_ADMIN)
READ = require_capability(Capability.ALERT_READ)
ACK = require_capability(Capability.ALERT_ACK)
OPS = require_capability(Capability.OPS_READ)
SESSION_ALERTS = session_access(Capability.SESSION_VIEW_ALL, "alerts.view", collapse=True)

admin = APIRouter(prefix="/api/admin/policies", tags=["guardrails"], dependencies=[Depends(ADMIN)])
router = APIRouter(tags=["guardrails"])


def _timeout(services) -> float:
    return services.settings.guardrail_regex_timeout_ms


# Plain def routes: database work, run in FastAPI's thread pool.

@admin.get("", response_model=list[PolicyOut])
def list_all(services: ServicesDep) -> list[PolicyOut]:
    return [policies.view(r) for r in policies.list_policies(services.db)]


@admin.get("/presets")
def presets() -> dict[str, dict]:
    """The shipped presets a rule can name (``match_kind: preset``), with their patterns."""
    return {name: {"description": text, "patterns": list(patterns)} for name, (text, patterns) in PRESETS.items()}


@admin.post("", response_model=PolicyOut, status_code=201)
def create(spec: PolicyIn, request: Request, services: ServicesDep, user: User = Depends(ADMIN)) -> PolicyOut:
    row = policies.create_policy(services.db, spec, user.username, _timeout(services))
    audit.record_event(services.db, user.username, "policy.create", str(row.id), client_addr(request),
                       spec.model_dump(mode="json"))
    return policies.view(row)


@admin.get("/{policy_id}", response_model=PolicyOut)
def get_one(policy_id: int, services: ServicesDep) -> PolicyOut:
    return policies.view(policies.get_policy(services.db, policy_id))


@admin.put("/{policy_id}", response_model=PolicyOut)
def replace(policy_id: int, spec: PolicyIn, request: Request, services: ServicesDep,
            user: User = Depends(ADMIN)) -> PolicyOut:
    row = policies.update_policy(services.db, policy_id, spec, _timeout(services))
    audit.record_event(services.db, user.username, "policy.update", str(policy_id), client_addr(request),
                       {**spec.model_dump(mode="json"), "version": row.version})
    return policies.view(row)


@admin.delete("/{policy_id}", status_code=204)
def delete(policy_id: int, request: Request, services: ServicesDep, user: User = Depends(ADMIN)) -> None:
    row = policies.get_policy(services.db, policy_id)
    policies.delete_policy(services.db, policy_id)
    audit.record_event(services.db, user.username, "policy.delete", str(policy_id), client_addr(request),
                       {"name": row.name, "version": row.version})


@router.get("/api/alerts")
def list_alerts(services: ServicesDep, severity: Severity | None = None, rule: str | None = None,
                user: str | None = None, connection: str | None = None, session: str | None = None,
                since: datetime | None = None, until: datetime | None = None, acknowledged: bool | None = None,
                limit: int = Query(200, ge=1, le=alerts.MAX_LIST), viewer: User = Depends(READ)) -> dict:
    """Newest first. ``since``/``until`` are ISO 8601 times (UTC when no offset is given)."""
    items = alerts.list_alerts(services.db, severity=severity, rule=rule, user=user, connection_id=connection,
                               session_id=session, since=_utc(since), until=_utc(until), acknowledged=acknowledged,
                               limit=limit)
    return {"count": len(items), "alerts": items}


@router.get("/api/ops/guardrails")
def guardrail_kpis(services: ServicesDep, days: int = Query(30, ge=1, le=3650), viewer: User = Depends(OPS)) -> dict:
    """The ops page's guardrail KPIs: high-risk alerts, blocked commands, duration anomalies with reasons."""
    from datetime import timedelta

    return kpis.guardrail_kpis(services.db, services.db.now() - timedelta(days=days))


@router.get("/api/alerts/counts")
def alert_counts(services: ServicesDep, session: list[str] = Query(default_factory=list, max_length=500),
                 viewer: User = Depends(READ)) -> dict:
    """Per session: alerts, unacknowledged and high-risk ones (the sessions page's badge)."""
    return alerts.counts_by_session(services.db, session)


@router.get("/api/sessions/{session_id}/alerts")
def session_alerts(services: ServicesDep, grant: SessionGrant = Depends(SESSION_ALERTS)) -> dict:
    """A session's alerts in recording order: the player's timeline markers."""
    items = alerts.list_alerts(services.db, session_id=grant.session.id, limit=alerts.MAX_LIST)
    items.sort(key=lambda a: (a["offset_ms"] is None, a["offset_ms"] or 0))
    return {"session_id": grant.session.id, "alerts": items}


class AckIn(BaseModel):
    note: str = Field("", max_length=2000)


@router.post("/api/alerts/{alert_id}/ack")
def acknowledge(alert_id: int, body: AckIn, request: Request, services: ServicesDep,
                user: User = Depends(ACK)) -> dict:
    out = alerts.acknowledge(services.db, alert_id, user.username, body.note)
    audit.record_event(services.db, user.username, "alert.ack", str(alert_id), client_addr(request),
                       {"note": body.note, "session_id": out["session_id"], "rule": out["rule"]})
    return out


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
