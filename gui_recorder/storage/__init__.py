"""Object storage (MinIO/S3): the hot and the cold bucket."""

from gui_recorder.storage.objects import ObjectInfo, ObjectStore
from gui_recorder.storage.stores import cold_store, ensure_buckets, hot_store

__all__ = ["ObjectInfo", "ObjectStore", "cold_store", "ensure_buckets", "hot_store"]
