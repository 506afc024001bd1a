"""OpenTelemetry traces of the session pipeline, exported over OTLP/HTTP when ``otel_endpoint`` is set.

``configure`` (once per process, at start-up: the gateway's lifespan, the worker) builds a
``TracerProvider`` with a batch exporter; without an endpoint nothing is built and every
``span`` is OpenTelemetry's no-op. The provider is this module's, not the global one, so a
process (or a test) can shut it down and configure again.

Spans: every HTTP request and WebSocket (``asgi``: sign-in, search, the tunnel), ``tunnel.open``
and ``guacd.handshake``, ``recording.upload`` per segment, ``job.render`` / ``job.index`` in the
worker, ``search``. Each carries ``session.id`` when there is one (bound in ``context``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace

from gui_recorder.settings import Settings
from gui_recorder.telemetry import context

log = logging.getLogger(__name__)

_noop = trace.NoOpTracer()
_state: dict = {"provider": None, "tracer": _noop}


def configure(settings: Settings, component: str) -> bool:
    """Traces on when an endpoint is configured; returns whether they are."""
    if not settings.otel_endpoint:
        return False  # and leaves alone a provider another app of this process configured (tests)
    shutdown()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": settings.otel_service_name, "service.namespace": "gui-recorder",
                                "gui_recorder.component": component})
    provider = TracerProvider(resource=resource)
    endpoint = settings.otel_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10),
                                                   schedule_delay_millis=500))
    _state["provider"], _state["tracer"] = provider, provider.get_tracer("gui_recorder")
    log.info("traces: exported over OTLP/HTTP to %s", endpoint)
    return True


def shutdown() -> None:
    """Flushes what is batched and stops exporting (at a process's end)."""
    provider = _state["provider"]
    _state["provider"], _state["tracer"] = None, _noop
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _state["provider"] is not None


def flush(timeout_ms: int = 5000) -> None:
    if _state["provider"] is not None:
        _state["provider"].force_flush(timeout_ms)


@contextmanager
def span(name: str, *, session_id: str | None = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL,
         **attributes) -> Iterator[trace.Span]:
    """A span around a block; ``session_id`` is also bound for the block's logs. An exception is recorded
    on the span (status ERROR) and raised on."""
    with context.bound(session=session_id):
        sid = context.current_session_id()
        attrs = {k: v for k, v in attributes.items() if v is not None}
        if sid:
            attrs["session.id"] = sid
        request = context.current_request_id()
        if request:
            attrs["request.id"] = request
        with _state["tracer"].start_as_current_span(name, kind=kind, attributes=attrs) as current:
            yield current
