"""The files in docker/: the Grafana dashboard uses only metrics the running gateway exposes, and the
image and compose file are valid, pinned, and configure only real settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

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


# -- the deployment files (issue 17): no Docker engine here, so they are checked against the
# Compose Specification's own schema and against the settings object they configure.

ROOT = DOCKER.parent
COMPOSE_SCHEMA = ROOT / "tests" / "vendor" / "compose-spec.json"  # fetched, pinned, by scripts/setup.sh


def compose() -> dict:
    import yaml

    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_file_is_valid_compose_specification():
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(compose(), schema)
    broken = {**compose(), "services": {"gateway": {"image": "x", "ports": {"not": "a list"}}}}
    with pytest.raises(jsonschema.ValidationError):  # the schema really is checking
        jsonschema.validate(broken, schema)


def test_every_variable_compose_sets_is_a_settings_field():
    from gui_recorder.settings import ENV_PREFIX, Settings

    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    set_here = {key for service in compose()["services"].values()
                for key in (service.get("environment") or {}) if key.startswith(ENV_PREFIX)}
    assert {"GUI_RECORDER_DATABASE_URL", "GUI_RECORDER_GUACD_HOST", "GUI_RECORDER_S3_ENDPOINT"} <= set_here
    assert set_here <= fields, set_here - fields
    text = (DOCKER / "compose.yaml").read_text() + (DOCKER / "Dockerfile").read_text()
    assert set(re.findall(r"\b(GUI_RECORDER_[A-Z0-9_]+)", text)) - {"GUI_RECORDER_"} <= fields


def test_compose_runs_every_component_of_the_stack_at_a_pinned_version():
    services = compose()["services"]
    # What `gui-recorder dev` runs as processes, plus what production adds around it.
    assert {"gateway", "worker", "guacd", "minio", "postgres", "haproxy", "prometheus", "grafana"} <= set(services)
    assert services["guacd"]["image"].startswith("guacamole/guacd:"), "Apache's official guacd image"
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[a-z0-9./_-]+:[A-Za-z0-9._-]*\d[A-Za-z0-9._-]*", image), (name, image)
        assert "latest" not in image, (name, image)
    gateway, worker = services["gateway"], services["worker"]
    assert worker["image"] == gateway["image"] and worker["command"] == ["worker"]
    # The live text pass reads the segment being written: the worker sees the gateway's spool.
    spool = next(v.split(":")[1] for v in gateway["volumes"] if v.startswith("spool:"))
    assert f"spool:{spool}" in worker["volumes"]
    assert gateway["environment"]["GUI_RECORDER_SPOOL_DIR"] == spool == worker["environment"]["GUI_RECORDER_SPOOL_DIR"]
    # HAProxy is the one trusted proxy, at the address the gateway is told.
    assert services["haproxy"]["networks"]["backend"]["ipv4_address"] == gateway["environment"]["GUI_RECORDER_TRUSTED_PROXIES"]
    haproxy = (DOCKER / "haproxy.cfg").read_text()
    assert "option httpchk GET /api/health" in haproxy and "timeout tunnel" in haproxy
    assert '"gateway:8080"' in (DOCKER / "prometheus-compose.yml").read_text()


def test_image_is_pinned_unprivileged_and_health_checked():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-bookworm", base), base
    assert re.search(r"^USER (?!root\b)\S+", dockerfile, re.M), "the gateway holds credentials: never root"
    assert re.search(r"^HEALTHCHECK .*\n.*/api/health", dockerfile, re.M)
    assert "pip install -r requirements.lock" in dockerfile, "the same exact pins as every other install"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", "var/", ".git/"} <= set(ignored), "no local state or secrets in the build context"
