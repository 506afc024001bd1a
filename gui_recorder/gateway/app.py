"""The FastAPI application: the HTTP API, the WebSocket tunnel and the web client.

Everything with a lifetime (database, recording service) is built in the
lifespan from the one ``Settings`` object, never at import time.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from gui_recorder.db import Database
from gui_recorder.db.database import Clock
from gui_recorder.errors import GuiRecorderError
from gui_recorder.gateway import (accounts, audit_api, auth, evidence, live, media_api, ops_api, registry,
                                  search_api, sessions_api, tunnel)
from gui_recorder.index import SearchIndex
from gui_recorder.recording.service import RecordingService
from gui_recorder.settings import Settings
from gui_recorder.storage import cold_store, hot_store
from gui_recorder.storage.tiering import TieredStore, Tiering
from gui_recorder.worker import jobs

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The gateway. ``clock`` is the database's source of "now" (token expiry, stamps): tests move it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(settings, clock)
        db.create_all()
        accounts.seed_admin(db, settings)
        hot = hot_store(settings)

        def queue_work(session_id: str) -> None:
            # A complete recording is worth rendering and indexing: queue both, durably.
            for kind in jobs.KINDS:
                jobs.enqueue(db, kind, session_id)
        recordings = RecordingService(
            settings, hot,
            on_complete=lambda sid, manifest: sessions_api.recording_stored(db, sid, manifest, queue_work),
            on_progress=lambda sid, manifest: sessions_api.recording_stored(db, sid, manifest))
        app.state.db = db
        app.state.recordings = recordings
        cold = cold_store(settings)
        app.state.reader_store = TieredStore(hot, cold)
        app.state.usage = ops_api.UsageCache(Tiering(hot, cold))
        app.state.metrics = ops_api.metrics_registry(app)
        app.state.search_index = SearchIndex.from_settings(settings)
        app.state.text_timeline = lambda sid: [e.to_dict() for e in app.state.search_index.session_text(sid)]
        app.state.active = {}  # session id -> Relay, for live views and termination
        app.state.watch_tokens = live.WatchTokens()
        await recordings.start()
        try:
            yield
        finally:
            for relay in list(app.state.active.values()):
                relay.end_for_shutdown()
            await recordings.stop()
            app.state.search_index.close()
            db.dispose()

    app = FastAPI(title="gui-recorder", version="0.1.0", lifespan=lifespan,
                  description="Privileged-session recorder for RDP and VNC, built on Apache Guacamole.")
    app.state.settings = settings

    @app.exception_handler(GuiRecorderError)
    async def typed_error(request: Request, exc: GuiRecorderError) -> JSONResponse:
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=exc.http_status)

    @app.get("/api/health", tags=["health"])
    async def health() -> dict:
        return {"status": "ok"}

    for router in (auth.router, registry.router, registry.admin, sessions_api.router, audit_api.router,
                   tunnel.router, live.router, evidence.router, media_api.router, ops_api.router,
                   search_api.router):
        app.include_router(router)
    # Last, so that /api and /docs win.
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
