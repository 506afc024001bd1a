"""Operations: capacity figures for the dashboard, legal hold, and Prometheus metrics.

Current usage is read from the object stores themselves at request time, so
the dashboard shows the bytes that are really in MinIO; growth is fitted to
the samples the lifecycle job records, and the method is shown with it.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from gui_recorder.db import Database, Session, User
from gui_recorder.db.models import Job, Review, StorageSample
from gui_recorder.gateway import audit
from gui_recorder.gateway.edge import metrics_guard
from gui_recorder.gateway.access import SessionGrant, session_access
from gui_recorder.gateway.auth import client_addr, public, require_capability
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.sessions.rows import update_session
from gui_recorder.storage.planner import Rates, TierFigures, plan
from gui_recorder.vocabulary import Capability

router = APIRouter(tags=["operations"])
OPS = require_capability(Capability.OPS_READ)
LEGAL_HOLD = session_access(Capability.LEGAL_HOLD, None)  # an action: it records its own event, with the reason
GROWTH_WINDOW = timedelta(days=30)


class LegalHoldIn(BaseModel):
    hold: bool
    reason: str = Field("", max_length=500)


@router.put("/api/sessions/{session_id}/legal-hold")
def legal_hold(body: LegalHoldIn, request: Request, services: ServicesDep,
               grant: SessionGrant = Depends(LEGAL_HOLD)) -> dict:
    db, user, session_id = services.db, grant.user, grant.session.id
    update_session(db, session_id, legal_hold=body.hold)
    audit.record_event(db, user.username, "session.legal_hold", session_id, client_addr(request),
                       {"hold": body.hold, "reason": body.reason})
    return {"session_id": session_id, "legal_hold": body.hold}


def fit_growth(points: list[tuple[float, int]]) -> float | None:
    """Least-squares slope (bytes per day) of (epoch seconds, bytes) points; None under two points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return None
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / var
    return slope * 86400


def storage_report(db: Database, usage: dict, capacity: dict[str, int]) -> dict:
    now = db.now()
    with db.session() as s:
        samples = s.scalars(select(StorageSample).where(StorageSample.at >= now - GROWTH_WINDOW)
                            .order_by(StorageSample.at)).all()
        ended = s.scalars(select(Session).where(Session.ended_at.is_not(None))).all()
        reviewed = set(s.scalars(select(Review.session_id).distinct()))
    tiers = {}
    for tier in usage:  # the configured tiers, in order (Tiering.usage)
        points = [(x.at.timestamp(), x.bytes) for x in samples if x.tier == tier]
        points.append((now.timestamp(), usage[tier]["bytes"]))
        growth = fit_growth(points)
        cap = capacity.get(tier) or 0
        full_in = None
        if cap and growth and growth > 0:
            full_in = max(0.0, (cap - usage[tier]["bytes"]) / growth)
        tiers[tier] = {**usage[tier], "capacity_bytes": cap or None, "growth_bytes_per_day": growth,
                       "full_in_days": full_in, "samples": len(points)}
    by_protocol: dict[str, list[float]] = {}
    by_connection: dict[str, list[float]] = {}
    for row in ended:
        stored = (row.recording or {}).get("bytes", 0) + (row.video or {}).get("bytes", 0)
        hours = max((row.ended_at - row.started_at).total_seconds() / 3600, 1 / 3600)
        for bucket, key in ((by_protocol, row.protocol), (by_connection, row.connection_id)):
            acc = bucket.setdefault(key, [0.0, 0.0])
            acc[0] += stored
            acc[1] += hours
    recorded = [r for r in ended if r.status != "failed" or (r.recording or {}).get("bytes")]
    complete = sum(1 for r in recorded if r.recording_complete)
    return {
        "at": now.isoformat(),
        "tiers": tiers,
        "history": [{"at": x.at.isoformat(), "tier": x.tier, "bytes": x.bytes, "objects": x.objects} for x in samples],
        "bytes_per_session_hour": {
            "by_protocol": {k: v[0] / v[1] for k, v in by_protocol.items()},
            "by_connection": {k: v[0] / v[1] for k, v in by_connection.items()},
        },
        "coverage": {"sessions": len(recorded), "complete": complete,
                     "share": complete / len(recorded) if recorded else None},
        "review_rate": {"sessions": len(ended), "reviewed": sum(1 for r in ended if r.id in reviewed),
                        "share": sum(1 for r in ended if r.id in reviewed) / len(ended) if ended else None},
        "method": ("current bytes are listed from each bucket at request time; growth is the least-squares slope "
                   "through the lifecycle job's samples of the last 30 days plus the current figure; "
                   "full in = (capacity - used) / growth"),
    }


def _media_bytes(video: dict | None) -> int | None:
    """Bytes of a session's rendered media (all objects; older renders recorded the video's only)."""
    if not video:
        return None
    value = video.get("media_bytes", video.get("bytes"))
    return int(value) if isinstance(value, (int, float)) else None


def measured_rates(db: Database, protocol: str | None = None, connection: str | None = None) -> dict:
    """Recording and media bytes per session-hour of ended sessions: overall, by protocol, by connection.

    Media is measured over the sessions that were rendered (its hours apart), so sessions
    still waiting for their render do not dilute it.
    """
    with db.session() as s:
        ended = s.scalars(select(Session).where(Session.ended_at.is_not(None))).all()
    groups: dict[tuple[str, str], list[float]] = {}
    for row in ended:
        if (protocol and row.protocol != protocol) or (connection and row.connection_id != connection):
            continue
        recorded = (row.recording or {}).get("bytes")
        if not recorded:
            continue
        hours = max((row.ended_at - row.started_at).total_seconds() / 3600, 1 / 3600)
        media = _media_bytes(row.video)
        for key in (("all", ""), ("protocol", row.protocol), ("connection", row.connection_id)):
            acc = groups.setdefault(key, [0.0, 0.0, 0.0, 0.0])  # recording, hours, media, media hours
            acc[0] += recorded
            acc[1] += hours
            if media is not None:
                acc[2] += media
                acc[3] += hours

    def figures(acc: list[float]) -> dict:
        return {"recording": acc[0] / acc[1] if acc[1] else 0.0, "media": acc[2] / acc[3] if acc[3] else 0.0,
                "session_hours": acc[1]}

    return {"all": figures(groups.get(("all", ""), [0.0] * 4)),
            "by_protocol": {k[1]: figures(v) for k, v in groups.items() if k[0] == "protocol"},
            "by_connection": {k[1]: figures(v) for k, v in groups.items() if k[0] == "connection"}}


@router.get("/api/ops/capacity-plan")
def capacity_plan(services: ServicesDep, _: User = Depends(OPS),
                  concurrent: float = Query(ge=0, le=100_000, description="Sessions recorded at once"),
                  hours_per_day: float = Query(gt=0, le=24, description="Hours a day they run"),
                  days: int = Query(ge=1, le=36500, description="Days of this load"),
                  protocol: str | None = Query(None, max_length=16, description="Rates of this protocol only"),
                  connection: str | None = Query(None, max_length=64,
                                                 description="Rates of this connection only")) -> dict:
    """Hot and cold capacity for "N concurrent sessions, H hours a day, for D days", from measured rates."""
    usage = services.usage.get(True)
    report = storage_report(services.db, usage, {t.name: t.capacity_bytes for t in services.tiering.tiers})
    rates = measured_rates(services.db, protocol, connection)
    tiers = [TierFigures(t.name, t.after_days, t.capacity_bytes, report["tiers"][t.name]["bytes"],
                         report["tiers"][t.name]["growth_bytes_per_day"]) for t in services.tiering.tiers]
    settings = services.settings
    out = plan(tiers, Rates(**rates["all"]), settings.retention_days, services.tiering.drop_media,
               concurrent, hours_per_day, days, services.db.now().date())
    out["inputs"]["measured"] = rates
    out["inputs"]["rates_of"] = {"protocol": protocol, "connection": connection}
    return out


@router.get("/api/ops/storage")
def storage(services: ServicesDep, _: User = Depends(OPS)) -> dict:
    usage = services.usage.get(True)
    return storage_report(services.db, usage, {t.name: t.capacity_bytes for t in services.tiering.tiers})


class GatewayCollector:
    """Prometheus metrics computed at scrape time from the live state."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        services = self.services
        yield GaugeMetricFamily("gr_active_sessions", "Sessions being relayed now", value=len(services.active))
        recordings = services.recordings
        sealed_age, first_byte_age = recordings.uploader.ages()  # one walk of the spool for both
        yield GaugeMetricFamily("gr_spool_bytes", "Bytes waiting in the local recording spool",
                                value=recordings.spool.size_bytes())
        yield GaugeMetricFamily("gr_upload_lag_seconds", "Age of the oldest segment not yet uploaded",
                                value=sealed_age)
        yield CounterMetricFamily("gr_recording_bytes_uploaded", "Recording bytes uploaded by this gateway",
                                  value=recordings.uploader.uploaded_bytes)
        # Alerts (issue 10): a recording that failed, an uploader that stopped, stuck or quarantined sessions.
        uploader = recordings.uploader
        yield CounterMetricFamily("gr_recording_write_failures", "Sessions whose recording failed to write "
                                  "since the gateway started (each ended the session: fail closed)",
                                  value=recordings.recording_failures)
        yield CounterMetricFamily("gr_recording_tampered_reads", "Reads of a sealed recording that failed its "
                                  "checks (issue 13): each a security event, the session marked tampered",
                                  value=recordings.tampered_reads)
        yield GaugeMetricFamily("gr_uploader_up", "1 while the supervised upload task runs",
                                value=1 if recordings.running() else 0)
        yield CounterMetricFamily("gr_upload_errors", "Failed upload attempts (any session)", value=uploader.errors)
        yield GaugeMetricFamily("gr_upload_stuck_sessions", "Sessions whose upload failed several times in a row",
                                value=len(uploader.stuck()))
        yield GaugeMetricFamily("gr_upload_quarantined_sessions", "Sessions set aside: they cannot be uploaded",
                                value=len(recordings.spool.quarantined()))
        yield GaugeMetricFamily("gr_upload_oldest_unuploaded_seconds",
                                "Age of the oldest spooled byte not yet in the object store",
                                value=first_byte_age)
        drives = GaugeMetricFamily("gr_store_drives", "Drives of the recording store (the first tier) by state, "
                                   "as MinIO reports them: an erasure-coded store serves on with some offline",
                                   labels=["state"])
        for state, count in sorted((recordings.store.drives() or {}).items()):
            drives.add_metric([state], count)
        yield drives
        usage = services.usage.get()
        tier_bytes = GaugeMetricFamily("gr_tier_bytes", "Bytes stored per tier", labels=["tier"])
        tier_objects = GaugeMetricFamily("gr_tier_objects", "Objects stored per tier", labels=["tier"])
        for tier, figures in usage.items():
            tier_bytes.add_metric([tier], figures["bytes"])
            tier_objects.add_metric([tier], figures["objects"])
        yield tier_bytes
        yield tier_objects
        capacity = GaugeMetricFamily("gr_tier_capacity_bytes", "Configured capacity per tier (0: not set)",
                                     labels=["tier"])
        for tier in services.tiering.tiers:
            capacity.add_metric([tier.name], tier.capacity_bytes)
        yield capacity
        db: Database = services.db
        now = db.now()
        with db.session() as s:
            depth = s.execute(select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)).all()
            oldest = dict(s.execute(select(Job.kind, func.min(Job.created_at)).where(Job.state == "queued")
                                    .group_by(Job.kind)).all())
            seconds = dict(s.execute(select(Job.kind, func.coalesce(func.sum(Job.seconds), 0.0))
                                     .where(Job.state == "done").group_by(Job.kind)).all())
            failures = s.scalar(select(func.count()).select_from(Session)
                                .where(Session.end_reason.like("recording failed%"))) or 0
            incomplete = s.scalar(select(func.count()).select_from(Session)
                                  .where(Session.ended_at.is_not(None), Session.status != "failed",
                                         Session.recording_complete.is_(False))) or 0
        queue = GaugeMetricFamily("gr_worker_queue", "Worker jobs by kind and state", labels=["kind", "state"])
        for kind, job_state, n in depth:
            queue.add_metric([kind, job_state], n)
        yield queue
        lag = GaugeMetricFamily("gr_worker_lag_seconds", "Age of the oldest queued job", labels=["kind"])
        for kind, created in oldest.items():
            lag.add_metric([kind], (now - created).total_seconds())
        yield lag
        busy = CounterMetricFamily("gr_worker_seconds", "Seconds spent on finished jobs (render, index = OCR)",
                                   labels=["kind"])
        for kind, total in seconds.items():
            busy.add_metric([kind], float(total))
        yield busy
        yield CounterMetricFamily("gr_recording_failures", "Sessions ended because their recording failed",
                                  value=failures)
        yield GaugeMetricFamily("gr_recordings_incomplete", "Ended sessions whose recording is not complete",
                                value=incomplete)


def register_metrics(services: Services) -> CollectorRegistry:
    """The gateway's collector on ``services.metrics`` (built empty with the services, which it reads)."""
    services.metrics.register(GatewayCollector(services))
    return services.metrics


@router.get("/metrics", include_in_schema=False,
            dependencies=[Depends(public("for Prometheus; guarded by its own setting, not a sign-in")),
                          Depends(metrics_guard)])  # bearer token or loopback only (edge)
def metrics(services: ServicesDep) -> Response:
    # Plain def: a scrape lists the buckets and queries the job table (GatewayCollector).
    body = generate_latest(services.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
