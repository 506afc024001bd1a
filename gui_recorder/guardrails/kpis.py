"""The guardrails' figures for the ops page and Prometheus: alerts by rule, blocked commands, and
sessions whose length is far outside their user's or connection's usual one.

Duration anomalies use a robust statistic, so one marathon session cannot
hide the next: per user and per connection with at least ``MIN_HISTORY``
ended sessions, the median and the median absolute deviation (MAD); a session
is listed when its modified z-score ``0.6745 * (d - median) / MAD`` exceeds
``Z_LIMIT`` (Iglewicz and Hoaglin's 3.5), with the reason in words.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select

from gui_recorder.db import Database, Session
from gui_recorder.db.models import Alert
from gui_recorder.vocabulary import HIGH_RISK_SEVERITIES

MIN_HISTORY = 5
Z_LIMIT = 3.5
MAX_SESSIONS = 5000  # the newest ended sessions the statistic reads


def alert_counts(db: Database) -> list[tuple[str, str, str, int]]:
    """(rule, severity, action, alerts) over every stored alert (both processes raise them)."""
    with db.session() as s:
        return [tuple(r) for r in s.execute(select(Alert.rule_name, Alert.severity, Alert.action, func.count())
                                            .group_by(Alert.rule_name, Alert.severity, Alert.action))]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def duration_anomalies(durations: list[tuple[str, str, str, float]]) -> list[dict]:
    """``durations``: (session id, user, connection, seconds). The outliers, each with its reason."""
    groups: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for session_id, user, connection, seconds in durations:
        groups[("user", user)].append((session_id, seconds))
        groups[("connection", connection)].append((session_id, seconds))
    found: dict[str, dict] = {}
    for (kind, name), items in groups.items():
        if len(items) < MIN_HISTORY:
            continue
        values = [d for _, d in items]
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values)
        scale = max(mad, 0.01 * median, 1.0)  # all alike: a session must still differ by more than noise
        for session_id, seconds in items:
            z = 0.6745 * (seconds - median) / scale
            if abs(z) > Z_LIMIT and (session_id not in found or abs(z) > abs(found[session_id]["z"])):
                longer = "longer" if seconds > median else "shorter"
                found[session_id] = {
                    "session_id": session_id, "by": kind, "name": name, "seconds": round(seconds, 1),
                    "median_seconds": round(median, 1), "mad_seconds": round(mad, 1), "z": round(z, 1),
                    "reason": f"{_minutes(seconds)}: far {longer} than {kind} {name}'s usual {_minutes(median)} "
                              f"(median of {len(items)}, MAD {_minutes(mad)}, robust z {z:.1f} > {Z_LIMIT})"}
    return sorted(found.values(), key=lambda a: -abs(a["z"]))


def guardrail_kpis(db: Database, since: datetime | None = None) -> dict:
    with db.session() as s:
        alerts_q = select(Alert.severity, Alert.blocked, Alert.acknowledged_at.is_(None), func.count()) \
            .group_by(Alert.severity, Alert.blocked, Alert.acknowledged_at.is_(None))
        if since is not None:
            alerts_q = alerts_q.where(Alert.at >= since)
        by = s.execute(alerts_q).all()
        ended = s.execute(select(Session.id, Session.username, Session.connection_id, Session.started_at,
                                 Session.ended_at).where(Session.ended_at.is_not(None))
                          .order_by(Session.started_at.desc()).limit(MAX_SESSIONS)).all()
    high = sum(n for sev, _, _, n in by if sev in HIGH_RISK_SEVERITIES)
    high_open = sum(n for sev, _, open_, n in by if sev in HIGH_RISK_SEVERITIES and open_)
    blocked = sum(n for _, was_blocked, _, n in by if was_blocked)
    durations = [(sid, user, conn, (end - start) / timedelta(seconds=1)) for sid, user, conn, start, end in ended]
    return {"alerts": sum(n for *_, n in by), "high_risk_alerts": high, "high_risk_open": high_open,
            "blocked_commands": blocked, "duration_anomalies": duration_anomalies(durations),
            "method": f"modified z-score on session length per user and per connection (median, MAD; "
                      f"at least {MIN_HISTORY} sessions; |z| > {Z_LIMIT})"}
