"""The hot and the cold bucket, as configured (they may be on different MinIO deployments)."""

from __future__ import annotations

import logging

from gui_recorder.errors import StorageError
from gui_recorder.settings import Settings
from gui_recorder.storage.objects import ObjectStore

log = logging.getLogger(__name__)


def hot_store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key.get_secret_value(),
                       settings.hot_bucket, secure=settings.s3_secure)


def cold_store(settings: Settings) -> ObjectStore:
    secret = settings.cold_secret_key or settings.s3_secret_key
    return ObjectStore(settings.cold_endpoint or settings.s3_endpoint, settings.cold_access_key or settings.s3_access_key,
                       secret.get_secret_value(), settings.cold_bucket, secure=settings.s3_secure)


def ensure_buckets(hot: ObjectStore, cold: ObjectStore, *, fatal: bool = True) -> bool:
    """Create (or check) both tiers' buckets; True when both are there.

    Called at start-up by the gateway and the worker, so no component ever reads from a
    bucket that does not exist yet (the cold one used to appear only at the first move,
    and every live-text look into it before then was a NoSuchBucket traceback). The
    worker calls it ``fatal`` (``StorageError``: it has nothing to do without the store);
    the gateway not, because MinIO being down must not stop recording: the spool absorbs
    the outage and the uploader checks the hot bucket again before its first upload.
    """
    try:
        for store in (hot, cold):
            store.ensure_bucket()
    except StorageError as exc:
        if fatal:
            raise
        log.error("the buckets could not be checked at start-up (reads will fail until the store is back): %s",
                  exc)
        return False
    return True
