"""Folding a viewer's repeated reads of one session into one audit event per window.

A browser reads a video in many Range requests and fetches a thumbnail per
hover; ``gateway.access`` records each such read through ``ViewWindow``, which
writes one event per (viewer, session, action) and ``audit_view_window_seconds``
and never lets a read be served unrecorded. It lives on the event loop
(asyncio futures fold parallel reads), one per gateway, in ``Services``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

# Remembered (viewer, session, action) keys; past this, reads are recorded without being remembered:
# a flood of distinct reads costs events, never memory, and never goes unrecorded.
MAX_REMEMBERED_VIEWS = 100_000


class ViewWindow:
    """Records one audit event per (viewer, session, action) and window, and never serves a read unrecorded.

    Times come from the database's clock (``Database.now``), so tests move it
    instead of sleeping. A read that finds the event of its window still being
    written waits for that write: if it fails, the read writes its own (and
    fails if that fails too), so parallel Range requests cannot slip past a
    failed write. Keys are remembered up to ``limit``; beyond it reads are
    recorded without being remembered (more events, never fewer).
    """

    def __init__(self, seconds: float, limit: int = MAX_REMEMBERED_VIEWS):
        self.window = timedelta(seconds=seconds)
        self.limit = limit
        # key -> (when its event was written or started, a future: True once written, False if that failed)
        self._last: dict[tuple[str, str, str], tuple[datetime, asyncio.Future]] = {}

    async def record_once(self, key: tuple[str, str, str], now: datetime,
                          write: Callable[[], Awaitable[None]]) -> None:
        entry = self._last.get(key)
        if self.window and entry is not None and entry[0] <= now < entry[0] + self.window:
            # shield: a reader that goes away must not cancel the write another reader waits on.
            if await asyncio.shield(entry[1]):
                return
        if not self.window:
            await write()
            return
        if key not in self._last and len(self._last) >= self.limit:
            self._last = {k: e for k, e in self._last.items() if e[0] + self.window > now or not e[1].done()}
            if len(self._last) >= self.limit:
                await write()
                return
        done = asyncio.get_running_loop().create_future()
        self._last[key] = (now, done)
        try:
            await write()
        except BaseException:
            if self._last.get(key, (None, None))[1] is done:
                del self._last[key]  # the next read must try again
            done.set_result(False)
            raise
        done.set_result(True)
