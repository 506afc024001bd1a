"""Hot -> cold -> deleted with real MinIO and a controllable clock."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from gui_recorder.errors import NotFoundError, StorageError
from gui_recorder.storage.keys import manifest_key, segment_key
from gui_recorder.storage import ObjectStore
from gui_recorder.stack.process import free_port
from gui_recorder.storage import ensure_buckets
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


def _session(hot: ObjectStore, sid: str, segments: int = 3) -> dict[str, bytes]:
    objects = {segment_key(sid, i): f"segment {i} of {sid} ".encode() * 1000 for i in range(1, segments + 1)}
    for key, data in objects.items():
        hot.put_bytes(key, data, metadata={"session": sid, "tier": "hot"})
    hot.put_json(manifest_key(sid), {"session_id": sid, "segments": list(objects)})
    objects[manifest_key(sid)] = hot.get_bytes(manifest_key(sid))
    return objects


def _retention(sid: str, days_ago: float, hold: bool = False) -> Retention:
    return Retention(sid, NOW - timedelta(days=days_ago), hot_days=30, retention_days=365, legal_hold=hold,
                     metadata={"user": "vendor", "connection": "demo-rdp"})


def test_aged_sessions_move_to_cold_and_read_the_same(tiers):
    hot, cold = tiers
    young, old = _session(hot, "young"), _session(hot, "old")
    report = Tiering(hot, cold, clock=lambda: NOW).run([_retention("young", 10), _retention("old", 40)])
    assert report.moved == ["old"] and not report.failed
    reader = TieredStore(hot, cold)
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
    tiering = Tiering(hot, cold, clock=lambda: NOW)
    tiering.run([_retention("gone", 40), _retention("held", 40, hold=True)])  # both cold first
    report = tiering.run([_retention("gone", 400), _retention("held", 400, hold=True)])
    assert report.deleted == ["gone"] and report.held == ["held"]
    reader = TieredStore(hot, cold)
    for key in gone:
        with pytest.raises(NotFoundError):
            reader.get_bytes(key)
    for key, data in held.items():
        assert reader.get_bytes(key) == data


def test_interrupted_move_resumes_without_loss_or_duplicate(tiers):
    hot, cold = tiers
    objects = _session(hot, "cut", segments=4)
    tiering = Tiering(hot, cold, clock=lambda: NOW)
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
    assert report.moved == ["cut"]
    assert sorted(o.key for o in cold.list("sessions/cut/")) == sorted(objects)
    assert hot.list("sessions/cut/") == []
    for key, data in objects.items():
        assert cold.get_bytes(key) == data


def test_usage_equals_bytes_in_minio(tiers):
    hot, cold = tiers
    a = _session(hot, "a")
    b = _session(hot, "b")
    tiering = Tiering(hot, cold, clock=lambda: NOW)
    tiering.run([_retention("a", 40)])
    usage = tiering.usage()
    assert usage["hot"] == {"bytes": sum(map(len, b.values())), "objects": len(b)}
    assert usage["cold"] == {"bytes": sum(map(len, a.values())), "objects": len(a)}


def test_delete_removes_the_session_from_both_tiers_and_nothing_else(tiers):
    hot, cold = tiers
    split, other = _session(hot, "split", segments=4), _session(hot, "other")
    tiering = Tiering(hot, cold, clock=lambda: NOW)
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
    report = Tiering(hot, unreachable, clock=lambda: NOW).run([_retention("stuck", 400)])
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
        TieredStore(hot, cold).get_json("sessions/x/manifest.json")
    down = ObjectStore(f"127.0.0.1:{free_port()}", stack.minio.access_key, stack.minio.secret_key, "cold")
    assert ensure_buckets(hot, down, fatal=False) is False, "the gateway starts while MinIO is down"
    with pytest.raises(StorageError):
        ensure_buckets(hot, down)
