"""Just-in-time access: tunnel tokens only inside an approved window, decided by an approver, audited;
and the policies API refuses unsafe rules with a 422 that says why. In process, on a settable clock."""

from __future__ import annotations

from datetime import timedelta

from gui_recorder.gateway import connections
from gui_recorder.gateway.guard import Guardrails
from test_gateway_api import audit_events, gw, template  # noqa: F401 - the shared in-process gateway

TOKEN = "/api/connections/win-rdp/tunnel-token"


def _require_approval(gw) -> None:
    row = connections.get_connection(gw.db, "win-rdp")
    with gw.db.session() as s:
        s.get(type(row), row.id).recording_policy = {**(row.recording_policy or {}), "require_approval": True}


async def test_a_vendor_gets_a_tunnel_token_only_inside_an_approved_window(gw):
    _require_approval(gw)
    vendor, admin = await gw.api("vendor"), await gw.api("admin")
    refused = await vendor.post(TOKEN)
    assert refused.status_code == 403 and "approved access window" in refused.json()["detail"]
    start, end = gw.clock.now + timedelta(minutes=10), gw.clock.now + timedelta(minutes=70)
    asked = await vendor.post("/api/connections/win-rdp/access-requests",
                              json={"reason": "patch KB5034441", "starts_at": start.isoformat(),
                                    "ends_at": end.isoformat()})
    assert asked.status_code == 201 and asked.json()["status"] == "pending", asked.text
    request_id = asked.json()["id"]
    assert (await vendor.post(TOKEN)).status_code == 403, "pending is not approved"
    assert (await vendor.post(f"/api/admin/access-requests/{request_id}/decision",
                              json={"approve": True})).status_code == 403, "vendors are no approvers"
    pending = (await admin.get("/api/admin/access-requests", params={"status": "pending"})).json()
    assert [r["id"] for r in pending] == [request_id]
    decided = await admin.post(f"/api/admin/access-requests/{request_id}/decision",
                               json={"approve": True, "note": "change 4711"})
    assert decided.status_code == 200 and decided.json()["status"] == "approved", decided.text
    again = await admin.post(f"/api/admin/access-requests/{request_id}/decision", json={"approve": False})
    assert again.status_code == 409, "a decision is final"
    assert (await vendor.post(TOKEN)).status_code == 403, "approved, but the window has not started"
    gw.clock.advance(11 * 60)
    assert (await vendor.post(TOKEN)).status_code == 200, "inside the window"
    gw.clock.advance(60 * 60)
    assert (await vendor.post(TOKEN)).status_code == 403, "the window is over"
    assert [e["detail"]["note"] for e in await audit_events(gw, "access.approve")] == ["change 4711"]
    assert len(await audit_events(gw, "connection.no_window")) == 4  # every refusal
    assert len(await audit_events(gw, "access.request")) == 1


async def test_a_denied_request_opens_nothing_and_connections_without_approval_are_unchanged(gw):
    _require_approval(gw)
    vendor, admin = await gw.api("vendor"), await gw.api("admin")
    now = gw.clock.now
    asked = (await vendor.post("/api/connections/win-rdp/access-requests",
                               json={"reason": "just looking", "starts_at": now.isoformat(),
                                     "ends_at": (now + timedelta(hours=1)).isoformat()})).json()
    denied = await admin.post(f"/api/admin/access-requests/{asked['id']}/decision",
                              json={"approve": False, "note": "no change ticket"})
    assert denied.json()["status"] == "denied"
    assert (await vendor.post(TOKEN)).status_code == 403
    operator = await gw.api("operator")
    assert (await operator.post("/api/connections/lin-vnc/tunnel-token")).status_code == 200
    mine = (await vendor.get("/api/access-requests")).json()
    assert [r["status"] for r in mine] == ["denied"]


class _WatchedRelay:
    """A stand-in for a relay, only to observe what the enforcer asks of it (no tunnel in process)."""

    def __init__(self, window_end):
        self.window_end, self.window_warned = window_end, False
        self.notices: list[str] = []
        self.ended = False

    async def send_notice(self, text: str) -> None:
        self.notices.append(text)

    def end_window(self) -> None:
        self.ended = True


async def test_the_enforcer_warns_five_minutes_before_the_window_ends_and_ends_the_session_at_its_end(gw):
    guard: Guardrails = gw.app.state.services.guardrails
    relay = _WatchedRelay(gw.clock.now + timedelta(minutes=20))
    active = {"s": relay}
    await guard._windows(active)
    assert not relay.notices and not relay.ended
    gw.clock.advance(15 * 60 + 1)
    await guard._windows(active)
    await guard._windows(active)
    assert len(relay.notices) == 1 and "ends in 5 minute(s)" in relay.notices[0] and not relay.ended
    gw.clock.advance(5 * 60)
    await guard._windows(active)
    assert relay.ended


async def test_unsafe_rules_are_refused_with_what_to_fix_and_changes_are_audited(gw):
    admin = await gw.api("admin")
    bad = await admin.post("/api/admin/policies", json={"name": "slow", "match_kind": "regex",
                                                         "match_value": ["(a+)+$"], "action": "alert"})
    assert bad.status_code == 422 and "catastrophic backtracking" in bad.json()["detail"], bad.text
    screen_block = await admin.post("/api/admin/policies", json={"name": "x", "match_kind": "words",
                                                                  "match_value": ["x"], "source": "screen",
                                                                  "action": "block"})
    assert screen_block.status_code == 422 and "typed" in screen_block.json()["detail"]
    ok = await admin.post("/api/admin/policies", json={"name": "preset", "match_kind": "preset",
                                                        "match_value": ["destructive-windows-commands"],
                                                        "action": "block", "severity": "high"})
    assert ok.status_code == 201, ok.text
    changed = await admin.put(f"/api/admin/policies/{ok.json()['id']}",
                              json={**ok.json(), "severity": "critical"})
    assert changed.json()["version"] == 2 and changed.json()["severity"] == "critical"
    assert [e["action"] for e in await audit_events(gw, "policy.create")] == ["policy.create"]
    assert (await audit_events(gw, "policy.update"))[0]["detail"]["version"] == 2
    presets = (await admin.get("/api/admin/policies/presets")).json()
    assert r"\bshutdown\b" in presets["destructive-windows-commands"]["patterns"]


async def test_alerts_are_counted_per_rule_severity_and_action_on_metrics_and_in_the_kpis(gw):
    from gui_recorder.guardrails import alerts
    from gui_recorder.guardrails.rules import Hit, Rule, compile_pattern

    rule = Rule(name="metrics rule", pattern=compile_pattern("words", ["x"], 20), severity="critical", action="block")
    ctx = alerts.SessionContext("s-metrics", "vendor", "win-rdp")
    for _ in range(3):
        alerts.record_hits(gw.db, ctx, [Hit(rule, "x", "typed", "x")], offset_ms=5, blocked=True)
    body = (await gw.client("127.0.0.1").get("/metrics")).text
    assert 'gr_guardrail_alerts_total{action="block",rule="metrics rule",severity="critical"} 3.0' in body, body
    kpis = (await (await gw.api("admin")).get("/api/ops/guardrails")).json()
    assert kpis["high_risk_alerts"] == 3 and kpis["blocked_commands"] == 3 and kpis["high_risk_open"] == 3
    counts = (await (await gw.api("auditor")).get("/api/alerts/counts", params={"session": "s-metrics"})).json()
    assert counts == {"s-metrics": {"alerts": 3, "open": 3, "high_risk": 3}}
