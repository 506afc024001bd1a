"""What the gateway's routes work with, typed, in one object built once at start-up.

The lifespan (``app.create_app``) builds one ``Services`` from the one
``Settings`` and stores it as ``app.state.services``, the only attribute on
``app.state``. Routes reach it through one dependency, ``get_services`` (or
its ``Annotated`` alias ``ServicesDep``), never through ``request.app.state``:
a reader sees in one place what a route may touch, and a typo is an error at
the type checker instead of an ``AttributeError`` in production
(issue 11: nine untyped attributes read in 62 places).

The object is frozen: nothing swaps a service under a running route. The
mutable parts are mutable on purpose and say so: ``active`` (the relays of the
sessions this gateway carries now) and ``remote_watchers``; the guacd pool, the
view window and the sign-in throttle keep their own in-memory state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

if TYPE_CHECKING:  # types only; none of these modules imports this one (tests/test_layers.py: no cycle)
    from prometheus_client import CollectorRegistry

    from gui_recorder.db import Database
    from gui_recorder.gateway.guard import Guardrails
    from gui_recorder.gateway.relay import Relay
    from gui_recorder.gateway.throttle import LoginThrottle
    from gui_recorder.gateway.usage import UsageCache
    from gui_recorder.gateway.view_window import ViewWindow
    from gui_recorder.gateway.watch_tokens import WatchTokens
    from gui_recorder.guacd.pool import GuacdPool
    from gui_recorder.index import SearchIndex
    from gui_recorder.recording.service import RecordingService
    from gui_recorder.settings import Settings
    from gui_recorder.storage.tiering import TieredStore, Tiering


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    recordings: RecordingService  # the spool, the uploader, the live recorders
    reader_store: TieredStore  # reads from whichever tier holds an object
    tiering: Tiering  # moves between tiers and forgets (DELETE /api/sessions/{id})
    usage: UsageCache  # bucket listings shared by the dashboard and scrapes
    search_index: SearchIndex
    metrics: CollectorRegistry  # what /metrics serves (ops_api.GatewayCollector)
    active: dict[str, Relay]  # session id -> its relay, for live views and termination (mutable)
    guacd: GuacdPool  # the guacd daemons new sessions go to
    gateway_id: str  # this gateway's name in the session rows it owns (settings.resolved_gateway_id)
    # session id -> this gateway's watchers of a session another gateway relays, ended when it ends (mutable)
    remote_watchers: dict[str, list[Relay]]
    watch_tokens: WatchTokens
    view_window: ViewWindow  # folds a viewer's repeated reads into one audit event per window
    login_throttle: LoginThrottle
    guardrails: Guardrails  # policies checked in the relay, alerts, the screen-rule enforcer (issue 14)

    @property
    def spool_root(self) -> Path:
        return self.recordings.spool.root

    @property
    def keyring(self):
        """Unwraps sealed recordings' data keys (issue 13): the recording service's key ring."""
        return self.recordings.sealing.keyring

    def text_timeline(self, session_id: str) -> list[dict]:
        """A session's typed and screen text by time, as the evidence bundle stores it."""
        return [entry.to_dict() for entry in self.search_index.session_text(session_id)]


async def get_services(connection: HTTPConnection) -> Services:
    """The one dependency through which routes (HTTP and WebSocket) reach the gateway's services.

    ``async`` although it does no I/O: FastAPI runs a plain ``def`` dependency in its thread
    pool, a thread hop per request for an attribute read.
    """
    return connection.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
