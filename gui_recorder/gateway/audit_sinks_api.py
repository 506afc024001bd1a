"""The audit sinks' health (issue 18): on the ops page (``/api/ops/audit-sinks``) and in ``/metrics``.

What this gateway process's stream reports (``Database.audit_stream``); the worker streams
its own events through its own queues, whose figures are in its log.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gui_recorder.db.audit_chain import HEAD_ID
from gui_recorder.db.models import AuditChainHead
from gui_recorder.gateway.auth import require_capability
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.vocabulary import Capability

router = APIRouter(tags=["operations"])
OPS = require_capability(Capability.OPS_READ)


def sink_report(services: Services) -> dict:
    stream = services.db.audit_stream
    with services.db.session() as s:
        head = s.get(AuditChainHead, HEAD_ID)
    return {"sinks": [asdict(h) for h in stream.health()] if stream else [],
            "chain": {"seq": head.seq if head else 0, "hash": head.hash if head else None}}


@router.get("/api/ops/audit-sinks", dependencies=[Depends(OPS)])
def audit_sinks(services: ServicesDep) -> dict:
    """Each configured sink: up, queue depth, spooled, delivered, dropped, resent, last success and error;
    and the audit chain's head."""
    return sink_report(services)


class AuditSinkCollector:
    """``gr_audit_sink_*{sink}`` at scrape time."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        stream = self.services.db.audit_stream
        health = stream.health() if stream else []
        families = {
            "up": GaugeMetricFamily("gr_audit_sink_up", "1 while the audit sink takes events", labels=["sink"]),
            "queued": GaugeMetricFamily("gr_audit_sink_queue_depth", "Audit events in the sink's memory queue",
                                        labels=["sink"]),
            "spooled": GaugeMetricFamily("gr_audit_sink_spooled_events", "Audit events spooled on disk for the "
                                         "sink", labels=["sink"]),
            "spooled_bytes": GaugeMetricFamily("gr_audit_sink_spooled_bytes", "Bytes of the sink's disk spool",
                                               labels=["sink"]),
            "delivered": CounterMetricFamily("gr_audit_sink_delivered", "Audit events the sink took",
                                             labels=["sink"]),
            "dropped": CounterMetricFamily("gr_audit_sink_dropped", "Audit events dropped from the sink's stream "
                                           "(queue or spool full; still in the database)", labels=["sink"]),
            "resent": CounterMetricFamily("gr_audit_sink_resent", "Audit events sent again after a broken "
                                          "connection", labels=["sink"]),
            "failures": CounterMetricFamily("gr_audit_sink_failures", "Failed delivery attempts", labels=["sink"]),
            "last_success": GaugeMetricFamily("gr_audit_sink_last_success_timestamp_seconds",
                                              "When the sink last took events (epoch seconds; 0: never)",
                                              labels=["sink"]),
        }
        for h in health:
            for key, family in families.items():
                value = getattr(h, key)
                family.add_metric([h.name], float(value or 0) if key != "up" else (1.0 if value else 0.0))
        yield from families.values()


def register_metrics(services: Services) -> None:
    services.metrics.register(AuditSinkCollector(services))
