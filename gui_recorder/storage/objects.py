"""An object-store adapter over the `minio` client.

Every minio/urllib3 exception is translated here into ``StorageError`` (what
failed, on which endpoint and bucket), so callers never see the dependency.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.credentials import StaticProvider
from minio.error import MinioException, S3Error
from minio.minioadmin import MinioAdmin

from gui_recorder.errors import NotFoundError, StorageError
from gui_recorder.vocabulary import Tier

# Fail fast when the store is down: the spool absorbs outages, callers retry.
_HTTP = urllib3.PoolManager(
    timeout=urllib3.Timeout(connect=3, read=30), retries=urllib3.Retry(total=1, backoff_factor=0.2), maxsize=16
)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    metadata: dict[str, str]


class ObjectStore:
    """One bucket on one S3 endpoint; ``tier`` names the configured tier it is (object metadata)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, secure: bool = False,
                 tier: str = Tier.HOT.value):
        self.endpoint = endpoint
        self.bucket = bucket
        self.tier = tier
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, http_client=_HTTP)
        self._admin = MinioAdmin(endpoint=endpoint, credentials=StaticProvider(access_key, secret_key),
                                 secure=secure, http_client=_HTTP)

    def drives(self) -> dict[str, int] | None:
        """How many of the store's drives are in each state (``ok``, ``offline``...), from MinIO's admin API;
        None when the store does not say (another S3 service, or keys without admin rights). An erasure-coded
        MinIO keeps serving with drives offline: this is how the loss is seen before a second one."""
        try:
            info = json.loads(self._admin.info())
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError):
            return None
        states: dict[str, int] = {}
        for server in info.get("servers") or []:
            for drive in server.get("drives") or []:
                state = drive.get("state") or "unknown"
                states[state] = states.get(state, 0) + 1
        return states or None

    def _error(self, action: str, key: str | None, exc: Exception) -> StorageError:
        where = f"{self.bucket}/{key}" if key else self.bucket
        return StorageError(f"object store {self.endpoint}: cannot {action} {where}: {exc}")

    def _call(self, action: str, key: str | None, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFoundError(f"no object {self.bucket}/{key}") from exc
            if exc.code == "NoSuchBucket":
                # Every tier's bucket is created at start-up (stores.ensure_buckets): a missing one is
                # a configuration to fix, not a missing object.
                raise StorageError(f"object store {self.endpoint}: there is no bucket {self.bucket}; the gateway "
                                   "and the worker create it at start-up: check the bucket settings") from exc
            raise self._error(action, key, exc) from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise self._error(action, key, exc) from exc

    def bucket_exists(self) -> bool:
        return bool(self._call("check bucket", None, self._client.bucket_exists, self.bucket))

    def ensure_bucket(self) -> None:
        if not self.bucket_exists():
            try:
                self._call("create bucket", None, self._client.make_bucket, self.bucket)
            except StorageError:
                if not self._call("check bucket", None, self._client.bucket_exists, self.bucket):
                    raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream",
                  metadata: dict[str, str] | None = None) -> None:
        self._call("write", key, self._client.put_object, self.bucket, key, io.BytesIO(data), len(data),
                   content_type=content_type, metadata=metadata)

    def put_file(self, key: str, path, content_type: str = "application/octet-stream",
                 metadata: dict[str, str] | None = None) -> None:
        self._call("write", key, self._client.fput_object, self.bucket, key, str(path),
                   content_type=content_type, metadata=metadata)

    def put_json(self, key: str, value, metadata: dict[str, str] | None = None) -> None:
        self.put_bytes(key, json.dumps(value, indent=1).encode(), "application/json", metadata)

    def get_bytes(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        response = self._call("read", key, self._client.get_object, self.bucket, key, offset=offset, length=length)
        try:
            return self._call("read", key, response.read)
        finally:
            response.close()
            response.release_conn()

    def get_json(self, key: str):
        return json.loads(self.get_bytes(key))

    def iter_bytes(self, key: str, offset: int = 0, length: int = 0, chunk: int = 1 << 16) -> Iterator[bytes]:
        response = self._call("read", key, self._client.get_object, self.bucket, key, offset=offset, length=length)
        try:
            yield from self._call("read", key, response.stream, chunk)
        finally:
            response.close()
            response.release_conn()

    def stat(self, key: str) -> ObjectInfo:
        st = self._call("stat", key, self._client.stat_object, self.bucket, key)
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (st.metadata or {}).items()
                if k.lower().startswith("x-amz-meta-")}
        return ObjectInfo(st.object_name, st.size, st.etag, st.last_modified, meta)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except NotFoundError:
            return False

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        objects = self._call("list", prefix, lambda: list(self._client.list_objects(self.bucket, prefix, recursive=True)))
        return [ObjectInfo(o.object_name, o.size, o.etag, o.last_modified, {}) for o in objects]

    def delete(self, key: str) -> None:
        self._call("delete", key, self._client.remove_object, self.bucket, key)

    def copy_from(self, source: "ObjectStore", key: str, metadata: dict[str, str] | None = None) -> None:
        """Server-side copy when both buckets share an endpoint, else stream through."""
        if source.endpoint == self.endpoint:
            self._call("copy", key, self._client.copy_object, self.bucket, key, CopySource(source.bucket, key),
                       metadata=metadata, metadata_directive="REPLACE" if metadata else None)
        else:
            self.put_bytes(key, source.get_bytes(key), metadata=metadata)
