"""The FastAPI application: the HTTP API, the WebSocket tunnel and the web client.

Everything with a lifetime (database, recording service) is built in the
lifespan from the one ``Settings`` object, never at import time, into one
``services.Services``: the only attribute on ``app.state``, which routes take
through ``Depends(get_services)``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from gui_recorder.db import Database, jobs
from gui_recorder.db.database import Clock
from gui_recorder.errors import GuiRecorderError
from gui_recorder.gateway import (accounts, audit_api, auth, evidence, live, media_api, ops_api, registry,
                                  search_api, sessions_api, tunnel)
from gui_recorder.gateway import cluster, connections, edge, forget_api, ssh, throttle, vocabulary_api
from gui_recorder.gateway import console_api, users_api
from gui_recorder.gateway import mfa_api, oidc
from gui_recorder.gateway import audit_sinks_api
from gui_recorder.gateway import approvals_api, policies_api
from gui_recorder.gateway.guard import GuardrailCollector, Guardrails
from gui_recorder.gateway.health import report as health_report
from gui_recorder.gateway.services import Services, ServicesDep
from gui_recorder.gateway.usage import UsageCache
from gui_recorder.gateway.view_window import ViewWindow
from gui_recorder.gateway.watch_tokens import WatchTokens
from gui_recorder.guacd.pool import GuacdPool
from gui_recorder.index import SearchIndex
from gui_recorder.recording.service import INTERRUPTED_REASON, RecordingService
from gui_recorder.sessions import rows
from gui_recorder.settings import Settings
from gui_recorder.storage import ensure_buckets, tier_stores
from gui_recorder.storage.tiering import TieredStore, Tiering
from gui_recorder.telemetry import traces
from gui_recorder.telemetry.asgi import RequestContext
from gui_recorder.vocabulary import Capability

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The gateway. ``clock`` is the database's source of "now" (token expiry, stamps): tests move it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.check_links()  # credentials and recordings never cross a network in the clear by default
        traced = traces.configure(settings, "gateway")  # off unless otel_endpoint is set (issue 18)
        db = Database(settings, clock)
        db.create_all()
        if db.audit_stream is not None:
            db.audit_stream.start()  # now, not at the first event: an earlier run's spool is sent at once
        connections.seal_plaintext_secrets(db, settings)  # secret parameters stored before they were sealed
        accounts.seed_admin(db, settings)
        tiers = tier_stores(settings)  # in order: recordings are written to the first
        hot = tiers[0].store

        recordings = RecordingService(
            settings, hot,
            on_complete=lambda sid, manifest: rows.recording_stored(db, sid, manifest,
                                                                    lambda done: jobs.enqueue_all(db, done)),
            on_progress=lambda sid, manifest: rows.recording_stored(db, sid, manifest))
        ensure_buckets(*(t.store for t in tiers), fatal=False)  # every tier exists before anything reads it
        # Moves and forgets (DELETE /api/sessions/{id}).
        tiering = Tiering(tiers, drop_media=settings.cold_drop_media,
                          rendered_media_days=settings.cold_rendered_media_days)
        services = Services(
            settings=settings, db=db, recordings=recordings, reader_store=TieredStore(tiers), tiering=tiering,
            usage=UsageCache(tiering), search_index=SearchIndex.from_settings(settings),
            metrics=CollectorRegistry(auto_describe=False), active={},
            guacd=GuacdPool(settings.guacd_pool, connect_timeout=settings.guacd_connect_timeout_seconds,
                            handshake_timeout=settings.guacd_timeout_seconds, tls=settings.guacd_tls_context(),
                            server_name=settings.guacd_tls_server_name),
            gateway_id=settings.resolved_gateway_id, remote_watchers={},
            watch_tokens=WatchTokens(db, settings.watch_token_ttl_seconds),
            # Folds a viewer's repeated reads of one session (Range requests) into one audit event per window.
            view_window=ViewWindow(settings.audit_view_window_seconds),
            login_throttle=throttle.from_settings(settings),
            guardrails=Guardrails(settings, db))
        ops_api.register_metrics(services)
        audit_sinks_api.register_metrics(services)  # gr_audit_sink_* (issue 18)
        services.metrics.register(GuardrailCollector(services.guardrails))
        app.state.services = services  # the one attribute on app.state: routes take it by get_services
        # This gateway's rows still `active` died with its last run: close them truly before the spool
        # recovery seals their recordings, which are then queued like any other.
        closed = await asyncio.to_thread(rows.close_interrupted, db, INTERRUPTED_REASON,
                                         recordings.last_write, services.gateway_id)
        if closed:
            log.warning("closed %d session(s) interrupted by the gateway's last stop", len(closed))
        ssh.sweep_typescripts(settings)  # SSH output files of sessions that died with the last gateway
        await recordings.start()
        peers = asyncio.create_task(cluster.serve_peers(services), name="peer gateways")
        enforcer = asyncio.create_task(services.guardrails.enforce_loop(services.active))
        try:
            yield
        finally:
            peers.cancel()
            enforcer.cancel()
            await services.guardrails.drain()  # alerts raised in the last moment are stored
            for relay in list(services.active.values()):
                relay.end_for_shutdown()
            await recordings.stop()
            services.search_index.close()
            db.dispose()
            if traced:
                traces.shutdown()  # flushes the last spans

    # FastAPI's own /docs and /redoc load from a CDN with inline scripts: ours is edge.install_docs.
    app = FastAPI(title="gui-recorder", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if settings.api_docs else None,
                  description="Privileged-session recorder for RDP and VNC, built on Apache Guacamole.")
    app.add_middleware(edge.SecurityHeaders)
    app.add_middleware(RequestContext)  # outermost: a request id and a span around everything (issue 18)

    # The HTTP edge: every error, ours or the framework's, as {"error", "detail"}.
    @app.exception_handler(GuiRecorderError)
    async def typed_error(request: Request, exc: GuiRecorderError) -> JSONResponse:
        # 4xx: the message says what to do; 5xx: a generic one, the detail only in the log.
        return edge.error_response(request, exc)

    app.add_exception_handler(RequestValidationError, edge.validation_response)
    app.add_exception_handler(StarletteHTTPException, edge.http_error_response)

    @app.get("/api/health", tags=["health"], dependencies=[Depends(auth.public("for probes and load balancers"))])
    async def health(services: ServicesDep) -> JSONResponse:
        """Each component's state and the overall status (503 when no session can be opened)."""
        body = await health_report(services, detail=False)
        return JSONResponse(body, status_code=503 if body["status"] == "down" else 200,
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/health/details", tags=["health"],
             dependencies=[Depends(auth.require_capability(Capability.OPS_READ))])
    async def health_details(services: ServicesDep) -> dict:
        """The same, with each component's error text and the stuck and quarantined sessions."""
        return await health_report(services, detail=True)

    for router in (auth.router, registry.router, registry.admin, sessions_api.router, audit_api.router,
                   tunnel.router, live.router, evidence.router, media_api.router, ops_api.router,
                   search_api.router):
        app.include_router(router)
    app.include_router(vocabulary_api.router)
    app.include_router(forget_api.router)  # DELETE /api/sessions/{id} (issue 10, point 7)
    app.include_router(users_api.router)  # users, groups, grants (issue 12)
    app.include_router(console_api.router)  # test-connect, runtime settings (issue 12)
    app.include_router(oidc.router)  # single sign-on and /api/auth/providers (issue 12)
    app.include_router(mfa_api.router)  # an admin resets a user's second factor
    app.include_router(mfa_api.own)  # a user's new recovery codes
    app.include_router(audit_sinks_api.router)  # the audit sinks' health (issue 18)
    app.include_router(policies_api.admin)  # /api/admin/policies (issue 14)
    app.include_router(policies_api.router)  # /api/alerts
    app.include_router(approvals_api.router)  # just-in-time access (issue 14)
    if settings.api_docs:
        edge.install_docs(app, WEB_DIR)
    # Last, so that /api and /docs win.
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
