"""Capacity planning: how much each tier needs for a planned load, and when each fills.

Pure arithmetic on measured figures (``gateway/ops_api.py`` gathers them):

- ``recording`` and ``media`` bytes per session-hour, measured on ended sessions
  (media = video, sprite, thumbnail index, poster; recording = the evidence);
- the tiers in order, each with its ``after_days``, capacity, bytes used now and
  growth (bytes per day, fitted to the lifecycle's samples);
- the retention (days after its end that a session is forgotten) and whether
  media is dropped when a session leaves the first tier.

The plan "N concurrent sessions, H hours a day, for D days" records S = N * H
session-hours a day. A session spends ages [after_i, after_{i+1}) in tier i, cut
at the retention; after D days of the load the sessions present are aged [0, D),
so tier i holds ``days_i = max(0, min(after_{i+1}, retention, D) - after_i)``
days of them and needs ``S * days_i * (recording + media_i)`` bytes, with
``media_i`` zero past the first tier when media is dropped. Once D reaches the
retention the figures stop growing (steady state). The date a tier fills at the
current growth is ``today + (capacity - used) / growth``; under the plan it is
``today + after_i + (capacity - used) / (S * bytes per session-hour of the tier)``
when that comes before the tier's oldest planned sessions leave it, else never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class TierFigures:
    name: str
    after_days: int
    capacity_bytes: int  # 0: not configured
    used_bytes: int
    growth_bytes_per_day: float | None


@dataclass(frozen=True)
class Rates:
    """Bytes per session-hour, measured."""

    recording: float
    media: float
    session_hours: float  # the hours they were measured over (0: no measurement)


METHOD = __doc__.split("\n\n", 1)[1].strip()


def plan(tiers: list[TierFigures], rates: Rates, retention_days: int, drop_media: bool,
         concurrent: float, hours_per_day: float, days: int, today: date) -> dict:
    """The capacity each tier needs for the plan, and when it fills: at the current growth and under the plan."""
    per_day = concurrent * hours_per_day  # session-hours a day
    horizon = min(days, retention_days)
    out = []
    for i, tier in enumerate(tiers):
        start = tier.after_days
        end = tiers[i + 1].after_days if i + 1 < len(tiers) else retention_days
        end = min(end, retention_days)
        held_days = max(0, min(end, horizon) - start)
        media = rates.media if (i == 0 or not drop_media) else 0.0
        bytes_per_day = per_day * (rates.recording + media)  # into this tier while it fills
        needed = bytes_per_day * held_days
        steady = bytes_per_day * max(0, end - start)
        growth = tier.growth_bytes_per_day
        fills_current = None
        if tier.capacity_bytes and growth and growth > 0:
            fills_current = today + timedelta(days=max(0.0, (tier.capacity_bytes - tier.used_bytes) / growth))
        fills_plan = None
        if tier.capacity_bytes and bytes_per_day > 0:
            # Under the plan the tier starts filling when the first planned sessions reach its age, grows by
            # bytes_per_day until its oldest ones leave (end - start days later), then stays level.
            room = tier.capacity_bytes - tier.used_bytes
            days_to_fill = room / bytes_per_day
            if days_to_fill <= max(0, end - start):
                fills_plan = today + timedelta(days=start + max(0.0, days_to_fill))
        out.append({
            "tier": tier.name, "holds_days": held_days, "media_kept": media > 0,
            "bytes_per_day": bytes_per_day, "needed_bytes": needed, "steady_state_bytes": steady,
            "capacity_bytes": tier.capacity_bytes or None, "used_bytes": tier.used_bytes,
            "fits": None if not tier.capacity_bytes else needed + tier.used_bytes <= tier.capacity_bytes,
            "growth_bytes_per_day": growth,
            "fills_at_current_growth": fills_current.isoformat() if fills_current else None,
            "fills_under_plan": fills_plan.isoformat() if fills_plan else None,
        })
    return {
        "plan": {"concurrent_sessions": concurrent, "hours_per_day": hours_per_day, "days": days,
                 "session_hours_per_day": per_day},
        "inputs": {"recording_bytes_per_session_hour": rates.recording, "media_bytes_per_session_hour": rates.media,
                   "measured_session_hours": rates.session_hours, "retention_days": retention_days,
                   "drop_media_after_first_tier": drop_media,
                   "tiers": [{"tier": t.name, "after_days": t.after_days, "capacity_bytes": t.capacity_bytes or None,
                              "used_bytes": t.used_bytes, "growth_bytes_per_day": t.growth_bytes_per_day}
                             for t in tiers]},
        "tiers": out,
        "total_needed_bytes": sum(t["needed_bytes"] for t in out),
        "method": METHOD,
    }
