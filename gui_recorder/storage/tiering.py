"""Hot -> cold -> deleted: every object of a session, moved by copy, verify, delete.

A move copies each object to the cold bucket, checks that the copy's SHA-256
equals the original's, and only when every object of the session is safely in
cold deletes the hot copies. Interrupted at any point, the next run finds each
object either still hot (copied again or found already copied) or already cold:
nothing is lost, nothing is duplicated. Reads go through ``TieredStore``, which
looks in hot first and then cold, so playback never depends on the tier.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gui_recorder.errors import GuiRecorderError, NotFoundError, StorageError
from gui_recorder.storage.keys import session_prefix
from gui_recorder.storage.objects import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Retention:
    """What the tiering job needs to know about one ended session."""

    session_id: str
    ended_at: datetime
    hot_days: int
    retention_days: int
    legal_hold: bool = False
    metadata: dict[str, str] = field(default_factory=dict)  # user, connection: copied onto cold objects

    def retain_until(self) -> datetime:
        return self.ended_at + timedelta(days=self.retention_days)


@dataclass
class TieringReport:
    moved: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _sha256(store: ObjectStore, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in store.iter_bytes(key):
        digest.update(chunk)
    return digest.hexdigest()


class TieredStore:
    """Reads a session's objects from whichever tier holds them."""

    def __init__(self, hot: ObjectStore, cold: ObjectStore):
        self.hot = hot
        self.cold = cold

    def _pick(self, key: str) -> ObjectStore:
        if self.hot.exists(key):
            return self.hot
        if self.cold.exists(key):
            return self.cold
        raise NotFoundError(f"no object {key} in the hot or the cold tier")

    def tier_of(self, key: str) -> str:
        return "hot" if self._pick(key) is self.hot else "cold"

    def stat(self, key: str) -> ObjectInfo:
        return self._pick(key).stat(key)

    def get_bytes(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        return self._pick(key).get_bytes(key, offset, length)

    def get_json(self, key: str):
        return self._pick(key).get_json(key)

    def iter_bytes(self, key: str, offset: int = 0, length: int = 0) -> Iterator[bytes]:
        return self._pick(key).iter_bytes(key, offset, length)

    def exists(self, key: str) -> bool:
        return self.hot.exists(key) or self.cold.exists(key)


class Tiering:
    def __init__(self, hot: ObjectStore, cold: ObjectStore, clock: Clock = _utc_now):
        self.hot = hot
        self.cold = cold
        self.now = clock

    def run(self, sessions: Iterable[Retention], expire: Callable[[str], object] | None = None) -> TieringReport:
        """Apply each session's due transition; one failing session does not stop the others.

        ``expire`` is what an expired session (not on hold) gets: the lifecycle passes
        ``forget_session``, which deletes far more than objects (index, row, audit). Without
        it only the objects are deleted (storage-only callers and tests).
        """
        report = TieringReport()
        now = self.now()
        for s in sessions:
            age = now - s.ended_at
            try:
                if age >= timedelta(days=s.retention_days):
                    if s.legal_hold:
                        report.held.append(s.session_id)
                    else:
                        (expire or self.delete_session)(s.session_id)
                        report.deleted.append(s.session_id)
                elif age >= timedelta(days=s.hot_days):
                    if self.move_session(s):
                        report.moved.append(s.session_id)
            except GuiRecorderError as exc:
                log.error("tiering of session %s failed (retried next run): %s", s.session_id, exc)
                report.failed[s.session_id] = str(exc)
        return report

    def move_session(self, s: Retention) -> bool:
        """Copy, verify, then delete hot. Returns False when nothing was left in hot."""
        self.cold.ensure_bucket()
        objects = self.hot.list(session_prefix(s.session_id))
        if not objects:
            return False
        metadata = {**s.metadata, "session": s.session_id, "tier": "cold",
                    "retain-until": s.retain_until().isoformat()}
        # The manifest last: while it is still hot, the session reads as hot.
        objects.sort(key=lambda o: o.key.endswith("manifest.json"))
        for obj in objects:
            self._copy_verified(obj.key, metadata)
        for obj in objects:
            self.hot.delete(obj.key)
        return True

    def _copy_verified(self, key: str, metadata: dict[str, str]) -> None:
        source = _sha256(self.hot, key)
        try:
            if _sha256(self.cold, key) == source:
                return  # copied by an earlier, interrupted run
        except NotFoundError:
            pass
        self.cold.copy_from(self.hot, key, metadata)
        if _sha256(self.cold, key) != source:
            raise StorageError(f"the cold copy of {key} does not match the hot original: not moved")

    def delete_session(self, session_id: str) -> int:
        """Delete every object of the session in both tiers; returns how many were deleted.

        Idempotent. Only a bucket that does not exist is skipped (nothing can be in it): any
        other failure to list raises, because a cold store that is merely unreachable may
        still hold the session, and reporting it deleted would be a lie.
        """
        prefix = session_prefix(session_id)
        deleted = 0
        for store in (self.hot, self.cold):
            if not store.bucket_exists():
                continue
            for obj in store.list(prefix):
                store.delete(obj.key)
                deleted += 1
            if store.list(prefix):  # written meanwhile (a render finishing): the next run tries again
                raise StorageError(f"objects of session {session_id} reappeared in {store.bucket} while "
                                   "it was deleted; it will be deleted again at the next run")
        return deleted

    def usage(self) -> dict[str, dict[str, int]]:
        """Bytes and objects per tier, read from the stores themselves."""
        out = {}
        for tier, store in (("hot", self.hot), ("cold", self.cold)):
            try:
                objects = store.list("")
            except StorageError:
                objects = []
            out[tier] = {"bytes": sum(o.size for o in objects), "objects": len(objects)}
        return out
