"""The duration-anomaly KPI: a robust statistic, so one long session stands out and does not hide another."""

from __future__ import annotations

from gui_recorder.guardrails.kpis import duration_anomalies


def test_a_session_far_outside_its_users_usual_length_is_listed_with_the_reason():
    usual = [(f"s{n}", "vendor", f"c{n}", 600.0 + 10 * n) for n in range(8)]  # ~10 minutes each
    odd = [("long", "vendor", "c-long", 6 * 3600.0), ("long2", "vendor", "c-long2", 3 * 3600.0)]
    found = duration_anomalies(usual + odd)
    assert [a["session_id"] for a in found] == ["long", "long2"], found
    assert found[0]["by"] == "user" and found[0]["name"] == "vendor"
    assert "far longer than user vendor's usual" in found[0]["reason"] and "robust z" in found[0]["reason"]


def test_too_little_history_or_alike_sessions_give_no_anomaly():
    assert duration_anomalies([(f"s{n}", "u", "c", 600.0) for n in range(4)] + [("x", "u", "c", 9000.0)]) != []
    assert duration_anomalies([(f"s{n}", "u", "c", 600.0) for n in range(3)] + [("x", "u", "c", 9000.0)]) == []
    assert duration_anomalies([(f"s{n}", "u", "c", 600.0 + n) for n in range(10)]) == []
