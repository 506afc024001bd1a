"""What a gateway does for the other gateways sharing its database.

An auditor may reach any gateway (a load balancer picks one). Watching a
session another gateway relays needs nothing from that gateway: the watcher
joins on the session's guacd, named in its row. Two things do need the
owner, and are done here, by polling the database every
``gateway_control_poll_seconds`` (it works the same on SQLite and PostgreSQL):

* a termination asked through another gateway: the owner ends its relay;
* a watcher of another gateway's session: it is ended when the session ends,
  since guacd would keep the connection alive for it after the owner left.
"""

from __future__ import annotations

import asyncio
import logging

from gui_recorder.errors import GuiRecorderError
from gui_recorder.gateway.relay import Ending, Relay
from gui_recorder.gateway.services import Services
from gui_recorder.guacd.status import Status
from gui_recorder.sessions import control
from gui_recorder.vocabulary import SessionStatus

log = logging.getLogger(__name__)


async def serve_peers(services: Services) -> None:
    """Runs for the gateway's lifetime (cancelled at shutdown)."""
    while True:
        # A poll interval, not a synchronisation: the requests come from other processes.
        await asyncio.sleep(services.settings.gateway_control_poll_seconds)
        try:
            await peer_tick(services)
        except GuiRecorderError as exc:  # the database is away a moment: try again next time
            log.warning("cannot look for requests from other gateways: %s", exc)


async def peer_tick(services: Services) -> None:
    for session_id, by in await asyncio.to_thread(control.take_terminations, services.db, services.gateway_id):
        relay = services.active.get(session_id)
        if relay is not None:
            relay.terminate(by)
    watched = services.remote_watchers
    if watched:
        alive = await asyncio.to_thread(control.still_active, services.db, set(watched))
        for session_id in set(watched) - alive:
            for watcher in watched.pop(session_id, []):
                watcher.end(Ending(SessionStatus.ENDED, "the watched session ended", Status.SESSION_CLOSED,
                                   "The session you were watching has ended."))


def add_remote_watcher(services: Services, session_id: str, relay: Relay) -> None:
    services.remote_watchers.setdefault(session_id, []).append(relay)


def remove_remote_watcher(services: Services, session_id: str, relay: Relay) -> None:
    watchers = services.remote_watchers.get(session_id, [])
    if relay in watchers:
        watchers.remove(relay)
    if not watchers:
        services.remote_watchers.pop(session_id, None)
