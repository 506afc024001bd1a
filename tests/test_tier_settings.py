"""Tiers are a setting (issue 11): the default list is today's hot + cold, the old variables still work,
a third tier is one line of configuration, and configurations that would lose data are refused."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gui_recorder.cli import settings_env
from gui_recorder.settings import Settings
from gui_recorder.storage import tier_stores, write_store

BASE = {"secret_key": "k" * 32, "s3_secret_key": "s3-secret"}
THREE = [{"name": "hot", "bucket": "rec-hot"}, {"name": "warm", "bucket": "rec-warm", "after_days": 30},
         {"name": "cold", "bucket": "rec-cold", "after_days": 180, "endpoint": "archive:9000",
          "access_key": "archiver", "secret_key": "archive-secret", "capacity_bytes": 10**12}]


@pytest.fixture(autouse=True)
def _no_tier_environment(monkeypatch):
    for name in ("TIERS", "HOT_BUCKET", "COLD_BUCKET", "COLD_ENDPOINT", "COLD_ACCESS_KEY", "COLD_SECRET_KEY",
                 "HOT_DAYS", "HOT_CAPACITY_BYTES", "COLD_CAPACITY_BYTES"):
        monkeypatch.delenv(f"GUI_RECORDER_{name}", raising=False)


def test_the_defaults_are_todays_hot_and_cold():
    tiers = tier_stores(Settings(**BASE))
    assert [(t.name, t.store.bucket, t.after_days, t.capacity_bytes) for t in tiers] == [
        ("hot", "recordings-hot", 0, 0), ("cold", "recordings-cold", 30, 0)]
    assert all(t.store.endpoint == "127.0.0.1:9000" and t.store.tier == t.name for t in tiers)


def test_the_old_variables_still_configure_the_first_two_tiers(monkeypatch):
    monkeypatch.setenv("GUI_RECORDER_HOT_BUCKET", "legacy-hot")
    monkeypatch.setenv("GUI_RECORDER_COLD_BUCKET", "legacy-cold")
    monkeypatch.setenv("GUI_RECORDER_COLD_ENDPOINT", "cold-site:9000")
    monkeypatch.setenv("GUI_RECORDER_COLD_SECRET_KEY", "cold-secret")
    monkeypatch.setenv("GUI_RECORDER_HOT_DAYS", "7")
    monkeypatch.setenv("GUI_RECORDER_HOT_CAPACITY_BYTES", "5000")
    settings = Settings(**BASE)
    hot, cold = settings.tiers
    assert (hot.bucket, hot.capacity_bytes, cold.bucket, cold.endpoint, cold.after_days) == (
        "legacy-hot", 5000, "legacy-cold", "cold-site:9000", 7)
    assert cold.secret_key.get_secret_value() == "cold-secret"
    assert settings.hot_bucket is None, "folded into tiers: the one truth, nothing reads the old field"
    stores = tier_stores(settings)
    assert stores[1].store.endpoint == "cold-site:9000" and stores[0].store.endpoint == "127.0.0.1:9000"
    # Keyword arguments (as tests and embedders pass them) fold the same way.
    assert Settings(**BASE, hot_bucket="kw-hot").tiers[0].bucket == "kw-hot"


def test_a_third_tier_is_one_variable_and_reaches_a_child_process(monkeypatch):
    monkeypatch.setenv("GUI_RECORDER_TIERS", json.dumps(THREE))
    settings = Settings(**BASE)
    tiers = tier_stores(settings)
    assert [(t.name, t.store.bucket, t.after_days) for t in tiers] == [
        ("hot", "rec-hot", 0), ("warm", "rec-warm", 30), ("cold", "rec-cold", 180)]
    assert tiers[1].store.endpoint == "127.0.0.1:9000", "endpoint and keys default to the first tier's"
    assert tiers[2].store.endpoint == "archive:9000" and tiers[2].capacity_bytes == 10**12
    assert write_store(settings).bucket == "rec-hot"
    # The dev worker gets the settings as variables: the same tiers, secrets included, come back.
    env = settings_env(settings)
    assert "GUI_RECORDER_HOT_BUCKET" not in env
    monkeypatch.setenv("GUI_RECORDER_TIERS", env["GUI_RECORDER_TIERS"])
    again = Settings(**BASE)
    assert again.tiers == settings.tiers
    assert again.tiers[2].secret_key.get_secret_value() == "archive-secret"


@pytest.mark.parametrize("tiers, message", [
    ([], "at least 1"),
    ([{"name": "hot", "bucket": "aaa", "after_days": 3}], "must be 0"),
    ([{"name": "hot", "bucket": "aaa"}, {"name": "cold", "bucket": "bbb", "after_days": 0}], "must increase"),
    ([{"name": "hot", "bucket": "aaa"}, {"name": "hot", "bucket": "bbb", "after_days": 5}], "names must differ"),
    ([{"name": "hot", "bucket": "aaa"}, {"name": "deleted", "bucket": "bbb", "after_days": 5}], "'deleted'"),
    # One bucket for two tiers: a move (copy, verify, delete the source) would delete the recording.
    ([{"name": "hot", "bucket": "aaa"}, {"name": "cold", "bucket": "aaa", "after_days": 5}], "its own bucket"),
    ([{"name": "Archive tier", "bucket": "aaa"}], "name"),
    ([{"name": "hot", "bucket": "aaa", "color": "red"}], "color"),
])
def test_configurations_that_cannot_work_are_refused_with_the_reason(tiers, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**BASE, tiers=tiers)


def test_an_old_cold_variable_with_a_single_tier_says_what_to_set_instead():
    with pytest.raises(ValidationError, match="GUI_RECORDER_COLD_BUCKET is set but only 1 tier"):
        Settings(**BASE, tiers=[{"name": "hot", "bucket": "aaa"}], cold_bucket="bbb")
