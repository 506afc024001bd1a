"""The FastAPI application: the HTTP API, the WebSocket tunnel and the web client.

Everything with a lifetime (database, recording service) is built in the
lifespan from the one ``Settings`` object, never at import time.
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

from gui_recorder.db import Database, jobs
from gui_recorder.db.database import Clock
from gui_recorder.errors import GuiRecorderError
from gui_recorder.gateway import (access, accounts, audit_api, auth, evidence, live, media_api, ops_api, registry,
                                  search_api, sessions_api, tunnel)
from gui_recorder.gateway import edge, forget_api, throttle
from gui_recorder.gateway.health import report as health_report
from gui_recorder.index import SearchIndex
from gui_recorder.recording.service import INTERRUPTED_REASON, RecordingService
from gui_recorder.sessions import rows
from gui_recorder.settings import Settings
from gui_recorder.storage import cold_store, ensure_buckets, hot_store
from gui_recorder.storage.tiering import TieredStore, Tiering
from gui_recorder.vocabulary import Capability

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The gateway. ``clock`` is the database's source of "now" (token expiry, stamps): tests move it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(settings, clock)
        db.create_all()
        registry.seal_plaintext_secrets(db, settings)  # secret parameters stored before they were sealed
        accounts.seed_admin(db, settings)
        hot = hot_store(settings)

        def queue_work(session_id: str) -> None:
            # A complete recording is worth rendering and indexing: queue both, durably.
            for kind in jobs.KINDS:
                jobs.enqueue(db, kind, session_id)
        recordings = RecordingService(
            settings, hot,
            on_complete=lambda sid, manifest: rows.recording_stored(db, sid, manifest, queue_work),
            on_progress=lambda sid, manifest: rows.recording_stored(db, sid, manifest))
        app.state.db = db
        app.state.recordings = recordings
        cold = cold_store(settings)
        ensure_buckets(hot, cold, fatal=False)  # both tiers exist before anything reads them
        app.state.reader_store = TieredStore(hot, cold)
        app.state.tiering = Tiering(hot, cold)  # moves and forgets (DELETE /api/sessions/{id})
        app.state.usage = ops_api.UsageCache(app.state.tiering)
        app.state.metrics = ops_api.metrics_registry(app)
        app.state.search_index = SearchIndex.from_settings(settings)
        app.state.text_timeline = lambda sid: [e.to_dict() for e in app.state.search_index.session_text(sid)]
        app.state.active = {}  # session id -> Relay, for live views and termination
        app.state.watch_tokens = live.WatchTokens(settings.watch_token_ttl_seconds)
        # Rows still `active` belonged to a gateway that died (one gateway per database): close them
        # truly before the spool recovery seals their recordings, which are then queued like any other.
        closed = await asyncio.to_thread(rows.close_interrupted, db, INTERRUPTED_REASON,
                                         recordings.last_write)
        if closed:
            log.warning("closed %d session(s) interrupted by the gateway's last stop", len(closed))
        await recordings.start()
        try:
            yield
        finally:
            for relay in list(app.state.active.values()):
                relay.end_for_shutdown()
            await recordings.stop()
            app.state.search_index.close()
            db.dispose()

    # FastAPI's own /docs and /redoc load from a CDN with inline scripts: ours is edge.install_docs.
    app = FastAPI(title="gui-recorder", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if settings.api_docs else None,
                  description="Privileged-session recorder for RDP and VNC, built on Apache Guacamole.")
    app.state.settings = settings
    app.state.login_throttle = throttle.from_settings(settings)
    app.add_middleware(edge.SecurityHeaders)
    # Folds a viewer's repeated reads of one session (Range requests) into one audit event per window.
    app.state.view_window = access.ViewWindow(settings.audit_view_window_seconds)

    # The HTTP edge: every error, ours or the framework's, as {"error", "detail"}.
    @app.exception_handler(GuiRecorderError)
    async def typed_error(request: Request, exc: GuiRecorderError) -> JSONResponse:
        # 4xx: the message says what to do; 5xx: a generic one, the detail only in the log.
        return edge.error_response(request, exc)

    app.add_exception_handler(RequestValidationError, edge.validation_response)
    app.add_exception_handler(StarletteHTTPException, edge.http_error_response)

    @app.get("/api/health", tags=["health"], dependencies=[Depends(auth.public("for probes and load balancers"))])
    async def health(request: Request) -> JSONResponse:
        """Each component's state and the overall status (503 when no session can be opened)."""
        body = await health_report(request.app, detail=False)
        return JSONResponse(body, status_code=503 if body["status"] == "down" else 200,
                            headers={"Cache-Control": "no-store"})

    @app.get("/api/health/details", tags=["health"],
             dependencies=[Depends(auth.require_capability(Capability.OPS_READ))])
    async def health_details(request: Request) -> dict:
        """The same, with each component's error text and the stuck and quarantined sessions."""
        return await health_report(request.app, detail=True)

    for router in (auth.router, registry.router, registry.admin, sessions_api.router, audit_api.router,
                   tunnel.router, live.router, evidence.router, media_api.router, ops_api.router,
                   search_api.router):
        app.include_router(router)
    app.include_router(forget_api.router)  # DELETE /api/sessions/{id} (issue 10, point 7)
    if settings.api_docs:
        edge.install_docs(app, WEB_DIR)
    # Last, so that /api and /docs win.
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
