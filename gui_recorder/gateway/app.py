"""The FastAPI application: the gateway's HTTP API and the web client."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from gui_recorder.settings import Settings

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="gui-recorder", version="0.1.0")
    app.state.settings = settings

    @app.get("/api/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return "<!doctype html><title>gui-recorder</title><h1>gui-recorder</h1>"

    return app
