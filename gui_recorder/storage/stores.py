"""The hot and the cold bucket, as configured (they may be on different MinIO deployments)."""

from __future__ import annotations

from gui_recorder.settings import Settings
from gui_recorder.storage.objects import ObjectStore


def hot_store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key.get_secret_value(),
                       settings.hot_bucket, secure=settings.s3_secure)


def cold_store(settings: Settings) -> ObjectStore:
    secret = settings.cold_secret_key or settings.s3_secret_key
    return ObjectStore(settings.cold_endpoint or settings.s3_endpoint, settings.cold_access_key or settings.s3_access_key,
                       secret.get_secret_value(), settings.cold_bucket, secure=settings.s3_secure)
