"""The configured tiers as object stores, in order (each may be on its own MinIO deployment).

``Settings.tiers`` is the one list: the first tier is where recordings and media
are written, each later one is where sessions move at its ``after_days``. A
third tier is a line of configuration, not code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gui_recorder.errors import StorageError
from gui_recorder.settings import Settings
from gui_recorder.storage.objects import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StorageTier:
    """One configured tier: its name, its bucket's store, when sessions move in, its capacity."""

    name: str
    store: ObjectStore
    after_days: int = 0
    capacity_bytes: int = 0  # 0: unknown (the dashboard then shows no "full in N days")


def tier_stores(settings: Settings) -> list[StorageTier]:
    """Every tier, in order; endpoint and keys default to the first tier's, then to ``s3_*``."""
    first = settings.tiers[0]
    endpoint = first.endpoint or settings.s3_endpoint
    access_key = first.access_key or settings.s3_access_key
    secret_key = first.secret_key or settings.s3_secret_key
    out = []
    for tier in settings.tiers:
        store = ObjectStore(tier.endpoint or endpoint, tier.access_key or access_key,
                            (tier.secret_key or secret_key).get_secret_value(), tier.bucket,
                            secure=settings.s3_secure, tier=tier.name)
        out.append(StorageTier(tier.name, store, tier.after_days, tier.capacity_bytes))
    return out


def write_store(settings: Settings) -> ObjectStore:
    """The first tier: where the uploader, the importer and the render worker write."""
    return tier_stores(settings)[0].store


def ensure_buckets(*stores: ObjectStore, fatal: bool = True) -> bool:
    """Create (or check) every tier's bucket; True when all are there.

    Called at start-up by the gateway and the worker, so no component ever reads from a
    bucket that does not exist yet (the cold one used to appear only at the first move,
    and every live-text look into it before then was a NoSuchBucket traceback). The
    worker calls it ``fatal`` (``StorageError``: it has nothing to do without the store);
    the gateway not, because MinIO being down must not stop recording: the spool absorbs
    the outage and the uploader checks the first bucket again before its first upload.
    """
    try:
        for store in stores:
            store.ensure_bucket()
    except StorageError as exc:
        if fatal:
            raise
        log.error("the buckets could not be checked at start-up (reads will fail until the store is back): %s",
                  exc)
        return False
    return True
