"""Tier to tier to deleted: every object of a session, moved by copy, verify, delete.

The tiers are the configured list (``stores.tier_stores``), in order: a session's
objects start in the first and move to the last tier whose ``after_days`` its age
has reached (straight there when a run was missed: no tier is copied twice). A
move copies each object into that tier, checks that the copy's SHA-256 equals the
original's, and only when every object of the session is safely there deletes the
source copies. Interrupted at any point, the next run finds each object either
still in its source (copied again or found already copied) or already moved:
nothing is lost, nothing is duplicated. Reads go through ``TieredStore``, which
looks in each tier in order, so playback never depends on the tier.

With ``drop_media`` (``Settings.cold_drop_media``, on by default) rendered media
(video, sprite, poster: everything under ``media/``) never leaves the first tier:
a move deletes it instead of copying it, since it can be rendered again from the
recording, which is the evidence (issue 19: cold bytes are then the recording
only; the media API queues a render when an auditor opens such a session).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gui_recorder.errors import GuiRecorderError, NotFoundError, StorageError
from gui_recorder.storage.keys import session_prefix
from gui_recorder.storage.objects import ObjectInfo, ObjectStore
from gui_recorder.storage.stores import StorageTier

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Retention:
    """What the tiering job needs to know about one ended session."""

    session_id: str
    ended_at: datetime
    retention_days: int
    legal_hold: bool = False
    metadata: dict[str, str] = field(default_factory=dict)  # user, connection: copied onto moved objects

    def retain_until(self) -> datetime:
        return self.ended_at + timedelta(days=self.retention_days)


@dataclass
class TieringReport:
    moved: dict[str, str] = field(default_factory=dict)  # session id -> the tier it moved into
    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    media_dropped: dict[str, int] = field(default_factory=dict)  # session id -> bytes of media deleted, not moved


def _sha256(store: ObjectStore, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in store.iter_bytes(key):
        digest.update(chunk)
    return digest.hexdigest()


class TieredStore:
    """Reads a session's objects from the first tier that holds them."""

    def __init__(self, tiers: Sequence[StorageTier]):
        if not tiers:
            raise ValueError("a tiered store needs at least one tier")
        self.tiers = list(tiers)

    def _pick(self, key: str) -> StorageTier:
        for tier in self.tiers:
            if tier.store.exists(key):
                return tier
        raise NotFoundError(f"no object {key} in any tier ({', '.join(t.name for t in self.tiers)})")

    def tier_of(self, key: str) -> str:
        return self._pick(key).name

    def stat(self, key: str) -> ObjectInfo:
        return self._pick(key).store.stat(key)

    def get_bytes(self, key: str, offset: int = 0, length: int = 0) -> bytes:
        return self._pick(key).store.get_bytes(key, offset, length)

    def get_json(self, key: str):
        return self._pick(key).store.get_json(key)

    def iter_bytes(self, key: str, offset: int = 0, length: int = 0) -> Iterator[bytes]:
        return self._pick(key).store.iter_bytes(key, offset, length)

    def exists(self, key: str) -> bool:
        return any(tier.store.exists(key) for tier in self.tiers)


def is_media(key: str) -> bool:
    return "/media/" in key


class Tiering:
    def __init__(self, tiers: Sequence[StorageTier], clock: Clock = _utc_now, drop_media: bool = False,
                 rendered_media_days: float = 7.0):
        if not tiers:
            raise ValueError("tiering needs at least one tier")
        self.tiers = list(tiers)
        self.now = clock
        self.drop_media = drop_media
        # With drop_media: first-tier media younger than this (a render on demand) is kept for now.
        self.rendered_media_age = timedelta(days=rendered_media_days)

    def due_tier(self, age: timedelta) -> int:
        """Index of the last tier whose after_days the age has reached (the first for a new session)."""
        due = 0
        for index, tier in enumerate(self.tiers):
            if age >= timedelta(days=tier.after_days):
                due = index
        return due

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
                else:
                    due = self.due_tier(age)
                    if due > 0 and self.move_session(s, due, report.media_dropped):
                        report.moved[s.session_id] = self.tiers[due].name
            except GuiRecorderError as exc:
                log.error("tiering of session %s failed (retried next run): %s", s.session_id, exc)
                report.failed[s.session_id] = str(exc)
        return report

    def move_session(self, s: Retention, into: int, dropped: dict[str, int] | None = None) -> bool:
        """Copy, verify, then delete every object of the session in a tier before ``into``.

        With ``drop_media`` its media is deleted rather than copied (bytes counted in
        ``dropped``), unless it is younger than ``rendered_media_days`` (rendered again on
        demand: it stays until a pass after that); a media object already in a later tier
        (moved before the setting) stays there. Returns False when nothing was left in those
        tiers (already moved). The sources are
        taken from the nearest to the first: objects in the first tier were written last
        (a render after an earlier move), so they are the ones a same-named key keeps.
        """
        target = self.tiers[into]
        target.store.ensure_bucket()
        metadata = {**s.metadata, "session": s.session_id, "tier": target.name,
                    "retain-until": s.retain_until().isoformat()}
        moved = False
        now = self.now()
        for source in reversed(self.tiers[:into]):
            if not source.store.bucket_exists():
                continue  # nothing can be in a bucket that is not there (as in delete_session)
            objects = [o for o in source.store.list(session_prefix(s.session_id))
                       if not (self.drop_media and is_media(o.key) and o.last_modified is not None
                               and now - o.last_modified < self.rendered_media_age)]
            if not objects:
                continue
            # The manifest last: while it is still in the source, the session reads from there.
            objects.sort(key=lambda o: o.key.endswith("manifest.json"))
            for obj in objects:
                if not (self.drop_media and is_media(obj.key)):
                    self._copy_verified(source, target, obj.key, metadata)
            for obj in objects:
                source.store.delete(obj.key)
                if self.drop_media and is_media(obj.key) and dropped is not None:
                    dropped[s.session_id] = dropped.get(s.session_id, 0) + obj.size
            moved = True
        return moved

    @staticmethod
    def _copy_verified(source: StorageTier, target: StorageTier, key: str, metadata: dict[str, str]) -> None:
        original = _sha256(source.store, key)
        try:
            if _sha256(target.store, key) == original:
                return  # copied by an earlier, interrupted run
        except NotFoundError:
            pass
        target.store.copy_from(source.store, key, metadata)
        if _sha256(target.store, key) != original:
            raise StorageError(f"the {target.name} copy of {key} does not match the {source.name} original: "
                               "not moved")

    def delete_session(self, session_id: str) -> int:
        """Delete every object of the session in every tier; returns how many were deleted.

        Idempotent. Only a bucket that does not exist is skipped (nothing can be in it): any
        other failure to list raises, because a tier that is merely unreachable may still
        hold the session, and reporting it deleted would be a lie.
        """
        prefix = session_prefix(session_id)
        deleted = 0
        for tier in self.tiers:
            store = tier.store
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
        """Bytes and objects per tier, in the configured order, read from the stores themselves."""
        out = {}
        for tier in self.tiers:
            try:
                objects = tier.store.list("")
            except StorageError:
                objects = []
            out[tier.name] = {"bytes": sum(o.size for o in objects), "objects": len(objects)}
        return out
