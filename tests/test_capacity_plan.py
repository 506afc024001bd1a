"""The capacity planner against a seeded history whose answers are computed here, independently.

Seeded: sessions of two protocols with known recording and media bytes and
durations, and a storage history growing by a known amount a day. The expected
figures are worked out below by hand from those numbers (per tier: days held x
session-hours a day x bytes per session-hour), not by calling the planner's code.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from gui_recorder.db import Database, Session
from gui_recorder.db.models import StorageSample
from gui_recorder.gateway.ops_api import fit_growth, measured_rates, storage_report
from gui_recorder.settings import Settings
from gui_recorder.storage.planner import Rates, TierFigures, plan

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MB = 1_000_000


@pytest.fixture
def db(tmp_path):
    settings = Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(32), s3_secret_key="unused")
    database = Database(settings, clock=lambda: NOW)
    database.create_all()
    # VNC: 3 sessions of 2 h, 60 MB recorded and 20 MB of media each; RDP: 1 session of 1 h, 50 MB and
    # no render yet (its hours count for recording, not for media). A session still running counts for nothing.
    seeded = [("vnc", "lin", 2, 60 * MB, {"media_bytes": 20 * MB})] * 3 + [("rdp", "win", 1, 50 * MB, {})]
    with database.session() as s:
        for i, (protocol, connection, hours, recorded, video) in enumerate(seeded):
            start = NOW - timedelta(days=i + 1)
            s.add(Session(id=f"s{i}", username="vendor", connection_id=connection, connection_name=connection,
                          protocol=protocol, started_at=start, ended_at=start + timedelta(hours=hours),
                          status="ended", recording={"bytes": recorded}, recording_complete=True, video=video))
        s.add(Session(id="live", username="vendor", connection_id="lin", connection_name="lin", protocol="vnc",
                      started_at=NOW, status="active", recording={"bytes": 999 * MB}))
        # Hot grew 10 MB a day for the last 10 days (to 100 MB), cold was flat at 40 MB.
        for day in range(10, 0, -1):
            s.add(StorageSample(at=NOW - timedelta(days=day), tier="hot", bytes=(10 - day) * 10 * MB, objects=1))
            s.add(StorageSample(at=NOW - timedelta(days=day), tier="cold", bytes=40 * MB, objects=1))
    yield database
    database.dispose()


def test_measured_rates_split_recording_from_media_by_protocol_and_connection(db):
    rates = measured_rates(db)
    # Recording: (3 x 60 + 50) MB over (3 x 2 + 1) h; media: 3 x 20 MB over the 6 rendered hours.
    assert rates["all"]["recording"] == pytest.approx(230 * MB / 7)
    assert rates["all"]["media"] == pytest.approx(10 * MB)
    assert rates["all"]["session_hours"] == pytest.approx(7)
    assert rates["by_protocol"]["vnc"] == pytest.approx({"recording": 30 * MB, "media": 10 * MB, "session_hours": 6})
    assert rates["by_protocol"]["rdp"] == pytest.approx({"recording": 50 * MB, "media": 0, "session_hours": 1})
    assert rates["by_connection"].keys() == {"lin", "win"}
    assert measured_rates(db, protocol="rdp")["all"]["recording"] == pytest.approx(50 * MB)


def test_plan_matches_the_hand_computed_answers(db):
    usage = {"hot": {"bytes": 100 * MB, "objects": 1}, "cold": {"bytes": 40 * MB, "objects": 1}}
    report = storage_report(db, usage, {"hot": 10_000 * MB, "cold": 0})
    assert report["tiers"]["hot"]["growth_bytes_per_day"] == pytest.approx(10 * MB)
    vnc = measured_rates(db, protocol="vnc")["all"]
    tiers = [TierFigures("hot", 0, 10_000 * MB, 100 * MB, report["tiers"]["hot"]["growth_bytes_per_day"]),
             TierFigures("cold", 30, 200_000 * MB, 40 * MB, 0.0)]
    today = NOW.date()

    # 20 concurrent sessions, 8 h a day: 160 session-hours a day, at 30 MB recorded + 10 MB media each.
    # 10 days: every session is still hot, 160 x 40 MB = 6,400 MB a day; nothing in cold yet.
    short = plan(tiers, Rates(**vnc), 365, True, 20, 8, 10, today)
    hot, cold = short["tiers"]
    assert hot["needed_bytes"] == pytest.approx(10 * 6400 * MB) and cold["needed_bytes"] == 0
    assert hot["fits"] is False  # 64 GB + 100 MB used > 10 GB
    # Hot fills at its current growth of 10 MB a day: (10,000 - 100) MB / 10 MB = 990 days.
    assert hot["fills_at_current_growth"] == (today + timedelta(days=990)).isoformat()
    # Under the plan: 9,900 MB of room at 6,400 MB a day, 1.546875 days from today.
    assert hot["fills_under_plan"] == (today + timedelta(days=9900 / 6400)).isoformat()
    assert cold["fills_at_current_growth"] is None, "no growth: never at this rate"

    # 400 days, past the 365-day retention: steady state. Hot holds 30 days of sessions with media,
    # cold the other 335 days of recordings only (media dropped on the move).
    full = plan(tiers, Rates(**vnc), 365, True, 20, 8, 400, today)
    hot, cold = full["tiers"]
    assert hot["holds_days"] == 30 and cold["holds_days"] == 335
    assert hot["needed_bytes"] == pytest.approx(30 * 160 * 40 * MB)  # 192 GB
    assert cold["needed_bytes"] == pytest.approx(335 * 160 * 30 * MB)  # 1,608 GB
    assert cold["media_kept"] is False and cold["needed_bytes"] == cold["steady_state_bytes"]
    # Cold starts filling on day 30, 4,800 MB a day into 199,960 MB of room: day 30 + 41.658...
    assert cold["fills_under_plan"] == (today + timedelta(days=30 + 199_960 / 4800)).isoformat()
    assert full["total_needed_bytes"] == pytest.approx((192_000 + 1_608_000) * MB)

    # Keeping media in cold costs 335 days x 160 h x 10 MB more there.
    kept = plan(tiers, Rates(**vnc), 365, False, 20, 8, 400, today)
    assert kept["tiers"][1]["needed_bytes"] - cold["needed_bytes"] == pytest.approx(335 * 160 * 10 * MB)
    assert "session-hours a day" in full["method"] and full["inputs"]["retention_days"] == 365


def test_fit_growth_is_the_least_squares_slope():
    day = 86400
    assert fit_growth([(0, 0), (day, 10), (2 * day, 20)]) == pytest.approx(10)
    assert fit_growth([(0, 5)]) is None
