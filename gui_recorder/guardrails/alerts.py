"""Alerts: what rules matched in which session, listed with filters, acknowledged with a note.

Written by the gateway (typed rules, at once) and by the worker (screen
rules, from the live text pass). A ``terminate`` from the worker is stored
``enforced=False``; the gateway that carries the session ends it and sets it
(``pending_terminations`` / ``mark_enforced``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from gui_recorder.db import Database
from gui_recorder.db.models import Alert
from gui_recorder.errors import NotFoundError
from gui_recorder.guardrails.rules import Hit
from gui_recorder.vocabulary import HIGH_RISK_SEVERITIES, RuleAction

MAX_ALERT_TEXT = 2000
MAX_LIST = 1000


@dataclass(frozen=True)
class SessionContext:
    session_id: str
    username: str
    connection_id: str


def record_hits(db: Database, ctx: SessionContext, hits: Iterable[Hit], *, offset_ms: int | None,
                blocked: bool = False, enforced: bool = True) -> list[dict]:
    """One alert per hit; returned as the API shows them (for notifications)."""
    out = []
    with db.session() as s:
        for hit in hits:
            row = Alert(at=db.now(), session_id=ctx.session_id, rule_id=hit.rule.id, rule_name=hit.rule.name,
                        rule_version=hit.rule.version, severity=hit.rule.severity, action=hit.rule.action,
                        source=hit.source, text=hit.text[-MAX_ALERT_TEXT:], username=ctx.username,
                        connection_id=ctx.connection_id, offset_ms=offset_ms,
                        blocked=blocked and hit.rule.action == RuleAction.BLOCK,
                        enforced=enforced or hit.rule.action != RuleAction.TERMINATE)
            s.add(row)
            s.flush()
            out.append(as_dict(row))
    return out


def as_dict(a: Alert) -> dict:
    return {"id": a.id, "at": a.at.isoformat(), "session_id": a.session_id, "rule_id": a.rule_id,
            "rule": a.rule_name, "rule_version": a.rule_version, "severity": a.severity, "action": a.action,
            "source": a.source, "text": a.text, "user": a.username, "connection_id": a.connection_id,
            "offset_ms": a.offset_ms, "blocked": a.blocked, "acknowledged": a.acknowledged_at is not None,
            "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
            "acknowledged_by": a.acknowledged_by, "note": a.note}


def list_alerts(db: Database, *, severity: str | None = None, rule: str | None = None, user: str | None = None,
                connection_id: str | None = None, session_id: str | None = None, since: datetime | None = None,
                until: datetime | None = None, acknowledged: bool | None = None, limit: int = 200) -> list[dict]:
    query = select(Alert).order_by(Alert.id.desc()).limit(min(limit, MAX_LIST))
    for column, value in ((Alert.severity, severity), (Alert.rule_name, rule), (Alert.username, user),
                          (Alert.connection_id, connection_id), (Alert.session_id, session_id)):
        if value:
            query = query.where(column == value)
    if since:
        query = query.where(Alert.at >= since)
    if until:
        query = query.where(Alert.at < until)
    if acknowledged is not None:
        query = query.where(Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None))
    with db.session() as s:
        return [as_dict(a) for a in s.scalars(query)]


def acknowledge(db: Database, alert_id: int, by: str, note: str) -> dict:
    with db.session() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        row.acknowledged_at, row.acknowledged_by, row.note = db.now(), by, note
        s.flush()
        return as_dict(row)


def counts_by_session(db: Database, session_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per session: all alerts, unacknowledged, and high-risk ones (the sessions page's badge)."""
    if not session_ids:
        return {}
    with db.session() as s:
        rows = s.execute(select(Alert.session_id, Alert.severity, Alert.acknowledged_at.is_(None), func.count())
                         .where(Alert.session_id.in_(session_ids))
                         .group_by(Alert.session_id, Alert.severity, Alert.acknowledged_at.is_(None))).all()
    out: dict[str, dict[str, int]] = {}
    for session_id, severity, open_, n in rows:
        c = out.setdefault(session_id, {"alerts": 0, "open": 0, "high_risk": 0})
        c["alerts"] += n
        c["open"] += n if open_ else 0
        c["high_risk"] += n if severity in HIGH_RISK_SEVERITIES else 0
    return out


def pending_terminations(db: Database, session_ids: Iterable[str]) -> list[tuple[int, str, str]]:
    """(alert id, session id, rule) of ``terminate`` alerts not yet enforced, for sessions carried here."""
    ids = list(session_ids)
    if not ids:
        return []
    with db.session() as s:
        return [(a.id, a.session_id, a.rule_name) for a in s.scalars(
            select(Alert).where(Alert.enforced.is_(False), Alert.session_id.in_(ids)))]


def mark_enforced(db: Database, alert_ids: list[int]) -> None:
    with db.session() as s:
        for row in s.scalars(select(Alert).where(Alert.id.in_(alert_ids))):
            row.enforced = True
