"""Object storage (MinIO/S3): the configured tiers, each a bucket, in order."""

from gui_recorder.storage.objects import ObjectInfo, ObjectStore
from gui_recorder.storage.stores import StorageTier, ensure_buckets, tier_stores, write_store

__all__ = ["ObjectInfo", "ObjectStore", "StorageTier", "ensure_buckets", "tier_stores", "write_store"]
