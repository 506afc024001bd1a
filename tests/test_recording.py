"""Recording: spool durability, upload to real MinIO, outages, recovery, read-back."""

from __future__ import annotations

import hashlib
import json

import pytest

from gui_recorder.errors import RecordingError, StorageError
from gui_recorder.protocol import Instruction, encode, parse_all
from gui_recorder.recording import SegmentSpool, SessionRecorder, Uploader
from gui_recorder.storage.keys import manifest_key
from gui_recorder.recording.reader import iter_recording
from gui_recorder.stack.process import free_port
from gui_recorder.storage import ObjectStore


class FakeClock:
    """A controllable monotonic clock (time is an input, not a sleep)."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def store(stack, request):
    bucket = "rec-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    s = ObjectStore(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key, bucket)
    s.ensure_bucket()
    return s


def _frames(n: int, start: int = 5000) -> list[tuple[list[Instruction], str]]:
    out = []
    for i in range(n):
        batch = [Instruction("rect", 0, i, i, 10, 10), Instruction("cfill", 14, 0, 255, 0, 0, 255),
                 Instruction("sync", start + i * 40)]
        out.append((batch, "".join(encode(x) for x in batch)))
    return out


def test_recorder_writes_guacd_format_with_input_in_guacd_clock(tmp_path):
    clock = FakeClock()
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=10)
    rec = SessionRecorder(spool.open_session("s1", {"user": "u"}), clock=clock, wall=lambda: 1_700_000_000.0)
    rec.client(Instruction("key", 97, 1))  # before guacd's first frame: held back
    (batch, wire), = _frames(1)
    rec.server(batch, wire)
    clock.t += 0.25
    rec.client(Instruction("mouse", 10, 20, 1))
    rec.client(Instruction("size", 800, 600))
    clock.t += 0.5
    rec.finish("done")
    data = (tmp_path / "s1" / "000001.guac").read_bytes()
    ins = parse_all(data)
    assert ins[:3] == batch
    assert ins[3] == ("key", "97", "1", "5000")
    assert ins[4] == ("mouse", "10", "20", "1", "5250")
    assert ins[5] == ("gr-client", "5250", "4.size,3.800,3.600;")
    assert ins[6] == ("sync", "5750")  # the final sync: players show the last frame
    meta = json.loads((tmp_path / "s1" / "session.json").read_text())
    assert meta["finished"] and meta["first_ts"] == 5000 and meta["duration_ms"] == 750
    assert meta["wall_start_ms"] == 1_700_000_000_000
    seg = json.loads((tmp_path / "s1" / "000001.json").read_text())
    assert seg["sha256"] == hashlib.sha256(data).hexdigest() and seg["size"] == len(data)


def test_segments_cut_by_size_and_age_and_uploaded_with_manifest(tmp_path, store):
    clock = FakeClock()
    spool = SegmentSpool(tmp_path, max_bytes=2000, max_seconds=5)
    session = spool.open_session("s2", {"user": "vendor", "connection": "demo-vnc"})
    session._clock = clock
    rec = SessionRecorder(session, clock=clock)
    expected = b""
    for batch, wire in _frames(60):
        rec.server(batch, wire)
        expected += wire.encode()
        clock.t += 0.2
    rec.finish("done")
    completed = []
    uploader = Uploader(spool, store, on_complete=lambda sid, m: completed.append((sid, m)))
    assert uploader.drain_once() >= 3
    manifest = store.get_json(manifest_key("s2"))
    assert manifest["complete"] is True and completed[0][0] == "s2"
    for seg in manifest["segments"]:
        body = store.get_bytes(seg["key"])
        assert hashlib.sha256(body).hexdigest() == seg["sha256"] and len(body) == seg["size"]
        assert store.stat(seg["key"]).metadata.get("session") == "s2"
    data = b"".join(iter_recording(store, tmp_path, "s2"))
    assert data.startswith(expected) and parse_all(data)[-1][0] == "sync"
    assert not (tmp_path / "s2").exists(), "the spool is emptied once everything is uploaded"


def test_minio_down_spool_keeps_everything_then_drains(tmp_path, stack, store):
    spool = SegmentSpool(tmp_path, max_bytes=500, max_seconds=5)
    rec = SessionRecorder(spool.open_session("s3", {}))
    for batch, wire in _frames(30):
        rec.server(batch, wire)
    rec.finish("done")
    # A real MinIO client against a port where nothing listens: the outage is real.
    down = ObjectStore(f"127.0.0.1:{free_port()}", "x", "y", store.bucket)
    with pytest.raises(StorageError):
        Uploader(spool, down).drain_once()
    assert len(list((tmp_path / "s3").glob("*.guac"))) >= 2
    Uploader(spool, store).drain_once()
    assert store.get_json(manifest_key("s3"))["complete"] is True


def test_crashed_gateway_segments_are_recovered_and_marked_interrupted(tmp_path, store):
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    rec = SessionRecorder(spool.open_session("s4", {}))
    for batch, wire in _frames(5):
        rec.server(batch, wire)
    rec.spool._file.flush()  # what the kernel has when the process dies
    rec.spool.abandon()
    spool.recover(tmp_path / "s4", "gateway stopped")
    Uploader(spool, store).drain_once()
    manifest = store.get_json(manifest_key("s4"))
    # Complete (nothing more will come: render and index it) and marked as cut short.
    assert manifest["complete"] is True and manifest["interrupted"] is True
    assert manifest["meta"]["interrupted"] is True
    assert len(parse_all(b"".join(iter_recording(store, tmp_path, "s4")))) == 15


def test_full_disk_raises_recording_error(tmp_path):
    # /dev/full fails every write with ENOSPC, as a full spool disk does (fault injection).
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    rec = SessionRecorder(spool.open_session("s5", {}))
    (batch, wire), = _frames(1)
    rec.server(batch, wire)
    rec.spool._file.close()
    with open("/dev/full", "wb", buffering=0) as full:
        rec.spool._file = full
        with pytest.raises(RecordingError, match="cannot write"):
            rec.server(batch, wire)
    rec.spool._file = None


def test_every_write_reaches_the_os_at_once(tmp_path):
    """No userspace buffer: what write() accepted is in the file for any other reader (and survives a kill)."""
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    # A still clock: input is stamped with guacd's last sync plus the time since it came (none here).
    rec = SessionRecorder(spool.open_session("s6", {}), clock=FakeClock())
    expected = b""
    for batch, wire in _frames(3):
        rec.server(batch, wire)
        expected += wire.encode()
        assert (tmp_path / "s6" / "000001.part").read_bytes() == expected
    assert rec.client_batch([Instruction("key", 97, 1), Instruction("key", 97, 0)]) is True
    on_disk = parse_all((tmp_path / "s6" / "000001.part").read_bytes())
    assert on_disk[-2:] == [("key", "97", "1", "5080"), ("key", "97", "0", "5080")]
    rec.spool.abandon()


def test_input_before_the_first_sync_is_held_not_lost(tmp_path):
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    rec = SessionRecorder(spool.open_session("s7", {}), clock=FakeClock())
    assert rec.client_batch([Instruction("key", 98, 1)]) is False, "no clock yet: the relay must hold it"
    (batch, wire), = _frames(1)
    rec.server(batch, wire)
    assert parse_all((tmp_path / "s7" / "000001.part").read_bytes())[-1] == ("key", "98", "1", "5000")
    rec.spool.abandon()


def test_rotation_does_not_fsync_on_the_writer_and_sealing_is_separate(tmp_path):
    spool = SegmentSpool(tmp_path, max_bytes=10, max_seconds=60)  # every batch fills a segment
    session = spool.open_session("s8", {})
    rec = SessionRecorder(session)
    for batch, wire in _frames(3):
        rec.server(batch, wire)
    assert session.unsealed and not list((tmp_path / "s8").glob("*.guac")), "rotated, not sealed yet"
    rec.seal_pending()  # what the relay runs in a thread
    assert not session.unsealed and len(list((tmp_path / "s8").glob("*.guac"))) == 3


def test_after_a_failed_write_the_session_refuses_every_later_write(tmp_path):
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    rec = SessionRecorder(spool.open_session("s9", {}))
    (batch, wire), = _frames(1)
    rec.server(batch, wire)
    good = (tmp_path / "s9" / "000001.part").read_bytes()
    rec.spool._file.close()
    with open("/dev/full", "wb", buffering=0) as full:  # fault injection: ENOSPC on every write
        rec.spool._file = full
        with pytest.raises(RecordingError):
            rec.client_batch([Instruction("key", 97, 1)])
    rec.spool._file = None
    with pytest.raises(RecordingError):
        rec.server(batch, wire)  # the disk may have room again: the session stays failed
    with pytest.raises(RecordingError):
        rec.client_batch([Instruction("key", 97, 1)])
    assert (tmp_path / "s9" / "000001.part").read_bytes() == good


def test_uploader_isolates_sessions_quarantines_corruption_and_retries_errors(tmp_path, store):
    clock = FakeClock()
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    for sid in ("a-corrupt", "b-oserror", "c-good"):
        rec = SessionRecorder(spool.open_session(sid, {}))
        for batch, wire in _frames(3):
            rec.server(batch, wire)
        rec.finish("done")
    # Fault injection: a flipped byte (disk corruption) and a local manifest that cannot be read or
    # written (a directory in its place: every access is an OSError, as from a failing disk).
    seg = tmp_path / "a-corrupt" / "000001.guac"
    data = bytearray(seg.read_bytes())
    data[5] ^= 0xFF
    seg.write_bytes(bytes(data))
    (tmp_path / "b-oserror" / "manifest.json").mkdir()
    completed = []
    uploader = Uploader(spool, store, on_complete=lambda sid, m: completed.append(sid), clock=clock)
    uploader.drain_once()
    assert completed == ["c-good"], "the other sessions are uploaded regardless"
    assert "checksum" in spool.quarantined()["a-corrupt"]
    assert "b-oserror" in uploader.retries and "IsADirectoryError" in uploader.last_error
    uploader.drain_once()  # within the backoff: not retried, not re-counted
    assert uploader.retries["b-oserror"].failures == 1
    for _ in range(2):
        clock.t += 120
        uploader.drain_once()
    assert "b-oserror" in uploader.stuck()
    (tmp_path / "b-oserror" / "manifest.json").rmdir()
    clock.t += 120
    uploader.drain_once()
    assert completed == ["c-good", "b-oserror"] and not uploader.retries and uploader.last_error is None
    assert (tmp_path / "a-corrupt").exists(), "a quarantined session stays in the spool for an operator"
    uploader.drain_once()
    assert "a-corrupt" not in completed


def test_uploader_seals_a_failed_sessions_directory_once_no_one_writes_it(tmp_path, store):
    spool = SegmentSpool(tmp_path, max_bytes=1 << 20, max_seconds=60)
    rec = SessionRecorder(spool.open_session("s10", {}))
    for batch, wire in _frames(4):
        rec.server(batch, wire)
    written = (tmp_path / "s10" / "000001.part").read_bytes()
    live = {"s10"}
    completed = []
    uploader = Uploader(spool, store, on_complete=lambda sid, m: completed.append(m), is_live=live.__contains__,
                        recovery_reason=lambda sid: ("recording failed: disk full", False, "disk full"))
    uploader.drain_once()
    assert not completed and (tmp_path / "s10" / "000001.part").exists(), "a live session is left alone"
    rec.spool.abandon()  # what the relay does after its recording failed
    live.clear()
    uploader.drain_once()
    manifest, = completed
    assert manifest["complete"] is True and manifest["interrupted"] is False
    assert manifest["recording_error"] == "disk full"
    assert b"".join(iter_recording(store, tmp_path, "s10")) == written
