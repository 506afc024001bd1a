"""The capacity planner on the ops page, in the real Chromium, against the API's own figures."""

from __future__ import annotations

import pytest

from support.pages import signed_in

pytestmark = [pytest.mark.stack, pytest.mark.browser]


def test_ops_page_plans_capacity_with_method_and_inputs(gateway, browser):
    context, page = signed_in(browser, gateway, "operator", "ops.html")
    try:
        page.fill("#plan-concurrent", "50")
        page.fill("#plan-hours", "10")
        page.fill("#plan-days", "90")
        page.click("#plan-submit")
        page.locator("#plan-inputs", has_text="500 session-hours a day").wait_for(timeout=15_000)
        rows = page.locator("#plan-rows tr")
        shown = [rows.nth(i).get_attribute("data-tier") for i in range(rows.count())]
        method = page.locator("#plan-method").text_content()
    finally:
        context.close()
    with gateway.api("operator") as operator:
        plan = operator.get("/api/ops/capacity-plan",
                            params={"concurrent": 50, "hours_per_day": 10, "days": 90}).json()
        assert operator.get("/api/ops/capacity-plan", params={"concurrent": 1, "hours_per_day": 25,
                                                              "days": 1}).status_code == 422
    with gateway.api("vendor") as vendor:
        assert vendor.get("/api/ops/capacity-plan", params={"concurrent": 1, "hours_per_day": 1,
                                                            "days": 1}).status_code == 403
    assert shown == [t.name for t in gateway.settings.tiers] == [t["tier"] for t in plan["tiers"]]
    assert "session-hours a day" in method
    # 90 days at the default tiers (cold at 30): hot holds 30 days, cold the other 60.
    assert [t["holds_days"] for t in plan["tiers"]] == [30, 60]
    rates = plan["inputs"]
    assert plan["tiers"][0]["needed_bytes"] == pytest.approx(
        500 * 30 * (rates["recording_bytes_per_session_hour"] + rates["media_bytes_per_session_hour"]))
