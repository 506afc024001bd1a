"""The Grafana dashboard only uses metrics the running gateway really exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def test_dashboard_metrics_exist_on_the_live_gateway(gateway):
    dashboard = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["panels"]
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\bgr_[a-z_]+", target["expr"])}
    exposed = set(re.findall(r"^(?:# TYPE )?(gr_[a-z_]+)", httpx.get(gateway.url + "metrics").text, re.M))
    exposed |= {name.removesuffix("_total") for name in exposed}
    assert used and used <= exposed, used - exposed
    assert "gui-recorder" in (DOCKER / "prometheus.yml").read_text()


def test_tier_panels_follow_the_configured_tiers():
    """Tiers are a setting (GUI_RECORDER_TIERS): panels split by the `tier` label, never name a tier."""
    from gui_recorder.vocabulary import Tier

    dashboard = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    tier_targets = [t for p in dashboard["panels"] for t in p["targets"] if "gr_tier_" in t["expr"]]
    assert len(tier_targets) >= 4
    for target in tier_targets:
        assert target["legendFormat"] == "{{tier}}", target
        assert not any(re.search(rf"\b{name}\b", target["expr"]) for name in (Tier.HOT, Tier.COLD)), target
