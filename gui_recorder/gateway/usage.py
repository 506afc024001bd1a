"""The object stores' current usage, read once and shared for a few seconds.

Listing every bucket is not free: the capacity dashboard (``/api/ops/storage``,
which asks for a fresh reading) and each Prometheus scrape share one.
"""

from __future__ import annotations

import time

from gui_recorder.storage.tiering import Tiering

USAGE_CACHE_SECONDS = 15.0


class UsageCache:
    """Listing buckets is not free: share one reading between the dashboard and scrapes."""

    def __init__(self, tiering: Tiering):
        self.tiering = tiering
        self._value: dict | None = None
        self._at = 0.0

    def get(self, fresh: bool = False) -> dict:
        if fresh or self._value is None or time.monotonic() - self._at > USAGE_CACHE_SECONDS:
            self._value, self._at = self.tiering.usage(), time.monotonic()
        return self._value
