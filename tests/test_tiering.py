"""Tier to tier to deleted with real MinIO and a controllable clock: two tiers (hot, cold) and three."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from gui_recorder.errors import NotFoundError, StorageError
from gui_recorder.storage.keys import manifest_key, segment_key
from gui_recorder.storage import ObjectStore
from gui_recorder.stack.process import free_port
from gui_recorder.storage import StorageTier, ensure_buckets
from gui_recorder.storage.tiering import Retention, TieredStore, Tiering

pytestmark = pytest.mark.stack
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def tiers(stack, request):
    name = hashlib.sha1(request.node.name.encode()).hexdigest()[:10]
    make = lambda b: ObjectStore(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key, b)  # noqa: E731
    hot, cold = make(f"hot-{name}"), make(f"cold-{name}")
    hot.ensure_bucket()
    return hot, cold


def _two(hot: ObjectStore, cold: ObjectStore) -> list[StorageTier]:
    """Today's default tiers: hot, then cold after 30 days."""
    return [StorageTier("hot", hot, 0), StorageTier("cold", cold, 30)]


def _session(hot: ObjectStore, sid: str, segments: int = 3) -> dict[str, bytes]:
    objects = {segment_key(sid, i): f"segment {i} of {sid} ".encode() * 1000 for i in range(1, segments + 1)}
    for key, data in objects.items():
        hot.put_bytes(key, data, metadata={"session": sid, "tier": "hot"})
    hot.put_json(manifest_key(sid), {"session_id": sid, "segments": list(objects)})
    objects[manifest_key(sid)] = hot.get_bytes(manifest_key(sid))
    return objects


def _retention(sid: str, days_ago: float, hold: bool = False) -> Retention:
    return Retention(sid, NOW - timedelta(days=days_ago), retention_days=365, legal_hold=hold,
                     metadata={"user": "vendor", "connection": "demo-rdp"})


def test_aged_sessions_move_to_cold_and_read_the_same(tiers):
    hot, cold = tiers
    young, old = _session(hot, "young"), _session(hot, "old")
    report = Tiering(_two(hot, cold), clock=lambda: NOW).run([_retention("young", 10), _retention("old", 40)])
    assert report.moved == {"old": "cold"} and not report.failed
    reader = TieredStore(_two(hot, cold))
    for key, data in old.items():
        assert not hot.exists(key)
        assert reader.get_bytes(key) == data and reader.tier_of(key) == "cold"
    info = cold.stat(segment_key("old", 1))
    assert info.metadata["tier"] == "cold" and info.metadata["user"] == "vendor"
    assert info.metadata["retain-until"].startswith((NOW - timedelta(days=40) + timedelta(days=365)).date().isoformat())
    for key, data in young.items():
        assert reader.get_bytes(key) == data and reader.tier_of(key) == "hot"


def test_expired_sessions_are_deleted_unless_on_legal_hold(tiers):
    hot, cold = tiers
    gone, held = _session(hot, "gone"), _session(hot, "held")
    tiering = Tiering(_two(hot, cold), clock=lambda: NOW)
    tiering.run([_retention("gone", 40), _retention("held", 40, hold=True)])  # both cold first
    report = tiering.run([_retention("gone", 400), _retention("held", 400, hold=True)])
    assert report.deleted == ["gone"] and report.held == ["held"]
    reader = TieredStore(_two(hot, cold))
    for key in gone:
        with pytest.raises(NotFoundError):
            reader.get_bytes(key)
    for key, data in held.items():
        assert reader.get_bytes(key) == data


def test_interrupted_move_resumes_without_loss_or_duplicate(tiers):
    hot, cold = tiers
    objects = _session(hot, "cut", segments=4)
    tiering = Tiering(_two(hot, cold), clock=lambda: NOW)
    # Interrupt after two copies: the fault is injected by making the third copy fail.
    real_copy, calls = cold.copy_from, []

    def failing_copy(source, key, metadata=None):
        calls.append(key)
        if len(calls) == 3:
            raise StorageError("injected: connection lost mid-move")
        return real_copy(source, key, metadata)

    cold.copy_from = failing_copy
    report = tiering.run([_retention("cut", 40)])
    assert "cut" in report.failed
    assert all(hot.exists(k) for k in objects), "nothing is deleted from hot before every copy is verified"
    cold.copy_from = real_copy
    report = tiering.run([_retention("cut", 40)])
    assert report.moved == {"cut": "cold"}
    assert sorted(o.key for o in cold.list("sessions/cut/")) == sorted(objects)
    assert hot.list("sessions/cut/") == []
    for key, data in objects.items():
        assert cold.get_bytes(key) == data


def test_usage_equals_bytes_in_minio(tiers):
    hot, cold = tiers
    a = _session(hot, "a")
    b = _session(hot, "b")
    tiering = Tiering(_two(hot, cold), clock=lambda: NOW)
    tiering.run([_retention("a", 40)])
    usage = tiering.usage()
    assert usage["hot"] == {"bytes": sum(map(len, b.values())), "objects": len(b)}
    assert usage["cold"] == {"bytes": sum(map(len, a.values())), "objects": len(a)}


def test_delete_removes_the_session_from_both_tiers_and_nothing_else(tiers):
    hot, cold = tiers
    split, other = _session(hot, "split", segments=4), _session(hot, "other")
    tiering = Tiering(_two(hot, cold), clock=lambda: NOW)
    tiering.run([_retention("split", 40)])  # to cold ...
    hot.put_bytes("sessions/split/media/poster.jpg", b"jpeg")  # ... then re-rendered into hot
    assert tiering.delete_session("split") == len(split) + 1
    assert hot.list("sessions/split/") == [] and cold.list("sessions/split/") == []
    assert all(hot.get_bytes(k) == v for k, v in other.items()), "only that session's prefix is touched"
    assert tiering.delete_session("split") == 0, "idempotent"


def test_delete_fails_when_the_cold_store_is_unreachable(tiers, stack):
    hot, _ = tiers
    objects = _session(hot, "stuck")
    # A real connection refused (nothing listens on the port), not a stand-in: the cold tier
    # may hold the session, so the delete must fail rather than report it gone.
    unreachable = ObjectStore(f"127.0.0.1:{free_port()}", stack.minio.access_key, stack.minio.secret_key, "cold")
    report = Tiering(_two(hot, unreachable), clock=lambda: NOW).run([_retention("stuck", 400)])
    assert report.deleted == [] and "stuck" in report.failed
    assert "cannot check bucket" in report.failed["stuck"]


def test_buckets_exist_after_start_up_and_a_cold_miss_is_not_found(stack, request):
    name = hashlib.sha1(request.node.name.encode()).hexdigest()[:10]
    make = lambda b: ObjectStore(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key, b)  # noqa: E731
    hot, cold = make(f"hot-{name}"), make(f"cold-{name}")
    assert not cold.bucket_exists()
    with pytest.raises(StorageError, match="there is no bucket"):
        cold.stat("sessions/x/manifest.json")  # what live text hit in normal operation before (issue 10)
    assert ensure_buckets(hot, cold) and hot.bucket_exists() and cold.bucket_exists()
    assert ensure_buckets(hot, cold), "checking again is harmless"
    with pytest.raises(NotFoundError):
        TieredStore(_two(hot, cold)).get_json("sessions/x/manifest.json")
    down = ObjectStore(f"127.0.0.1:{free_port()}", stack.minio.access_key, stack.minio.secret_key, "cold")
    assert ensure_buckets(hot, down, fatal=False) is False, "the gateway starts while MinIO is down"
    with pytest.raises(StorageError):
        ensure_buckets(hot, down)


@pytest.fixture
def three(stack, request) -> list[StorageTier]:
    """Hot, warm (30 days), cold (180 days): three buckets on the real MinIO, only hot created yet."""
    name = hashlib.sha1(request.node.name.encode()).hexdigest()[:10]
    make = lambda b: ObjectStore(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key, b)  # noqa: E731
    tiers = [StorageTier("hot", make(f"hot-{name}"), 0), StorageTier("warm", make(f"warm-{name}"), 30),
             StorageTier("cold", make(f"cold-{name}"), 180)]
    tiers[0].store.ensure_bucket()
    return tiers


def _where(tiers: list[StorageTier], sid: str) -> dict[str, int]:
    """How many objects of the session each tier's bucket holds, read from MinIO."""
    return {t.name: len(t.store.list(f"sessions/{sid}/")) if t.store.bucket_exists() else 0 for t in tiers}


def test_three_tiers_a_session_moves_hot_warm_cold_by_age_readable_at_every_step(three):
    hot, warm, cold = three
    objects = _session(hot.store, "aging")
    reader = TieredStore(three)
    ended = NOW

    def at(days: float):
        return Tiering(three, clock=lambda: ended + timedelta(days=days)).run([_retention_at("aging", ended)])

    def readable_from(name: str) -> None:
        for key, data in objects.items():
            assert reader.get_bytes(key) == data and reader.tier_of(key) == name

    report = at(10)
    assert report.moved == {} and _where(three, "aging") == {"hot": 4, "warm": 0, "cold": 0}
    readable_from("hot")

    report = at(40)
    assert report.moved == {"aging": "warm"} and not report.failed
    assert _where(three, "aging") == {"hot": 0, "warm": 4, "cold": 0}
    readable_from("warm")
    assert warm.store.stat(segment_key("aging", 1)).metadata["tier"] == "warm"
    assert at(41).moved == {}, "already in the tier it is due for: nothing to do"

    # A re-render while the session is warm writes into the first tier: the next move takes it along.
    hot.store.put_bytes("sessions/aging/media/poster.jpg", b"new poster")
    report = at(200)
    assert report.moved == {"aging": "cold"} and not report.failed
    assert _where(three, "aging") == {"hot": 0, "warm": 0, "cold": 5}
    readable_from("cold")
    assert reader.get_bytes("sessions/aging/media/poster.jpg") == b"new poster"
    info = cold.store.stat(manifest_key("aging"))
    assert info.metadata["tier"] == "cold" and info.metadata["user"] == "vendor"

    report = at(400)
    assert report.deleted == ["aging"] and _where(three, "aging") == {"hot": 0, "warm": 0, "cold": 0}
    for key in objects:
        with pytest.raises(NotFoundError):
            reader.get_bytes(key)


def test_three_tiers_an_overdue_session_goes_straight_to_the_tier_it_is_due_for(three):
    hot, warm, cold = three
    objects = _session(hot.store, "late")
    report = Tiering(three, clock=lambda: NOW).run([_retention_at("late", NOW - timedelta(days=200))])
    assert report.moved == {"late": "cold"}
    assert _where(three, "late") == {"hot": 0, "warm": 0, "cold": 4}, "never copied through warm"
    assert all(cold.store.get_bytes(k) == v for k, v in objects.items())


def test_three_tiers_usage_delete_and_buckets_cover_every_tier(three):
    hot, warm, cold = three
    assert ensure_buckets(*(t.store for t in three)) and all(t.store.bucket_exists() for t in three)
    a, b, c = _session(hot.store, "a"), _session(hot.store, "b"), _session(hot.store, "c")
    tiering = Tiering(three, clock=lambda: NOW)
    report = tiering.run([_retention_at("b", NOW - timedelta(days=40)), _retention_at("c", NOW - timedelta(days=190))])
    assert report.moved == {"b": "warm", "c": "cold"}
    usage = tiering.usage()
    assert list(usage) == ["hot", "warm", "cold"], "in the configured order"
    for name, objs in (("hot", a), ("warm", b), ("cold", c)):
        assert usage[name] == {"bytes": sum(map(len, objs.values())), "objects": len(objs)}
    hot.store.put_bytes("sessions/c/media/poster.jpg", b"jpeg")  # the session now in two tiers
    assert tiering.delete_session("c") == len(c) + 1
    assert _where(three, "c") == {"hot": 0, "warm": 0, "cold": 0}
    assert _where(three, "a")["hot"] == len(a) and _where(three, "b")["warm"] == len(b), "nothing else touched"


def _retention_at(sid: str, ended: datetime) -> Retention:
    return Retention(sid, ended, retention_days=365, metadata={"user": "vendor", "connection": "demo-rdp"})
