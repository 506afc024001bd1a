"""Object storage (MinIO/S3): the hot and the cold bucket."""

from gui_recorder.storage.objects import ObjectInfo, ObjectStore

__all__ = ["ObjectInfo", "ObjectStore"]
