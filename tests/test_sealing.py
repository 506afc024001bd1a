"""Sealing (issue 13) without the stack: records, key ring and rotation, chain, checkpoints, offline verify.

The spool tests here write through the real recorder and spool into a tmp dir;
the MinIO, HSM, API and player tests are in tests/test_sealing_stack.py.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from gui_recorder.errors import KeyUnavailableError, TamperedError
from gui_recorder.protocol import Instruction, encode, parse_all
from gui_recorder.recording import SegmentSpool, SessionRecorder
from gui_recorder.recording.reader import iter_recording
from gui_recorder.sealing.chain import Checkpoint, chain_of
from gui_recorder.sealing.keys import FileKek, FileSigner, KeyRing, SealingKeys, signed_entry, write_secret_file
from gui_recorder.sealing.records import RecordSealer, ends_final, whole_length
from gui_recorder.sealing.verify import verify_sealed
from gui_recorder.sessions.sealed_bundle import add_sealed
from support.bundle import run_step


class NoStore:
    """Nothing uploaded yet: the reader finds the recording in the spool alone."""

    def get_json(self, key):
        from gui_recorder.errors import NotFoundError
        raise NotFoundError(key)


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture
def keys(tmp_path) -> SealingKeys:
    return SealingKeys(KeyRing(FileKek.load(tmp_path / "keys" / "kek.key", create=True)),
                       FileSigner.load(tmp_path / "keys" / "signing.pem", create=True), checkpoint_seconds=5)


def _use_clock(session, clock) -> None:
    session._clock = session.seal_state._clock = clock
    session.seal_state._last_checkpoint = clock()


def record_session(root, keys, session_id="s1", frames=40, max_bytes=400):
    """A real recorder session through a sealed spool; returns (spool, the plaintext written, its clock)."""
    clock = Clock()
    spool = SegmentSpool(root, max_bytes=max_bytes, max_seconds=60, sealing=keys)
    session = spool.open_session(session_id, {"user": "u"})
    _use_clock(session, clock)
    rec = SessionRecorder(session, clock=clock)
    written = b""
    for i in range(frames):
        batch = [Instruction("rect", 0, i, i, 10, 10), Instruction("sync", 5000 + 40 * i)]
        wire = "".join(encode(x) for x in batch)
        rec.server(batch, wire)
        rec.client(Instruction("key", 97, 1))
        written += wire.encode()
        clock.t += 1.0
        rec.seal_pending()
    rec.finish("done")
    return spool, written, clock


def segments_of(directory) -> dict[int, bytes]:
    return {int(p.stem): p.read_bytes() for p in directory.glob("*.guac")}


def test_key_files_are_created_private(tmp_path, keys):
    for name in ("kek.key", "signing.pem"):
        mode = stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {oct(mode)}"
    with pytest.raises(FileExistsError):  # never overwritten: that would orphan every sealed session
        write_secret_file(tmp_path / "keys" / "kek.key", b"x")


def test_records_round_trip_and_bind_their_place():
    key = os.urandom(32)
    sealer = RecordSealer("s", key)
    data = sealer.seal(1, 0, b"4.sync,4.1000;") + sealer.seal(1, 1, b"3.key,2.97,1.1;") + sealer.seal(1, 2, b"", True)
    assert b"sync" not in data and b"key" not in data
    assert list(sealer.open(1, data)) == [b"4.sync,4.1000;", b"3.key,2.97,1.1;", b""]
    assert ends_final(data)
    with pytest.raises(TamperedError, match="segment 000002"):  # moved to another segment index
        list(sealer.open(2, data))
    with pytest.raises(TamperedError, match="session s2"):  # the same key, another session's place
        list(RecordSealer("s2", key).open(1, data))
    with pytest.raises(TamperedError):
        list(RecordSealer("s", os.urandom(32)).open(1, data))
    flipped = bytearray(data)
    flipped[20] ^= 1
    with pytest.raises(TamperedError, match="record 0"):
        list(sealer.open(1, bytes(flipped)))
    assert whole_length(data[:-3]) == (len(data) - len(sealer.seal(1, 2, b"", True)), 2)  # a torn tail is cut


def test_keyring_wraps_unwraps_names_missing_keys_and_rotates(tmp_path):
    old = FileKek.load(tmp_path / "old.key", create=True)
    new = FileKek.load(tmp_path / "new.key", create=True)
    before = KeyRing(old)
    dk = before.new_data_key("sess")
    assert dk.key.hex() not in json.dumps(dk.envelope) and dk.envelope["kek_id"] == old.kek_id
    with pytest.raises(KeyUnavailableError) as missing:
        KeyRing(new).open(dk.envelope)
    assert missing.value.key_id == old.kek_id and old.kek_id in str(missing.value)
    rotating = KeyRing(new, [old])
    rewrapped = rotating.rewrap(dk.envelope)
    assert rewrapped["kek_id"] == new.kek_id and rotating.rewrap(rewrapped) is None
    assert KeyRing(new).open(rewrapped) == dk.key  # the old KEK can now be retired
    moved = {**rewrapped, "session_id": "another"}
    with pytest.raises(KeyUnavailableError):  # the envelope is bound to its session
        KeyRing(new).open(moved)


def test_sealed_spool_holds_only_ciphertext_and_reads_back(tmp_path, keys):
    spool, written, _ = record_session(tmp_path, keys)
    directory = tmp_path / "s1"
    for path in directory.iterdir():
        body = path.read_bytes()
        assert b".key," not in body and b".sync," not in body and b".rect," not in body, path.name
    assert len(segments_of(directory)) >= 3
    data = b"".join(iter_recording(NoStore(), tmp_path, "s1", keys.keyring))
    shown = [i for i in parse_all(data) if i[0] != "key"]
    assert shown[:-1] == parse_all(written) and shown[-1][0] == "sync"  # + the final sync
    assert sum(1 for i in parse_all(data) if i[0] == "key") == 40
    with pytest.raises(KeyUnavailableError):
        next(iter_recording(NoStore(), tmp_path, "s1"))


def test_checkpoints_signed_every_n_seconds_and_at_the_end(tmp_path, keys):
    spool, _, _ = record_session(tmp_path, keys)
    checkpoints = json.loads((tmp_path / "s1" / "checkpoints.json").read_text())
    parsed = [Checkpoint.parse(c["text"]) for c in checkpoints]
    assert len(parsed) >= 3 and parsed[-1].final and parsed[-1].end == "clean"
    assert not any(cp.final for cp in parsed[:-1])
    assert [len(cp.segments) for cp in parsed] == sorted(len(cp.segments) for cp in parsed)
    segments = segments_of(tmp_path / "s1")
    assert len(parsed[-1].segments) == len(segments)
    assert parsed[-1].chain == chain_of("s1", parsed[-1].segments)
    for entry in checkpoints:
        keys.signer.public_key.verify(base64.b64decode(entry["signature"]), entry["text"].encode())


def _verify(tmp_path, keys, segments, checkpoints=None, public=None):
    checkpoints = checkpoints if checkpoints is not None else json.loads(
        (tmp_path / "s1" / "checkpoints.json").read_text())
    return verify_sealed("s1", segments, checkpoints, public or keys.signer.public_key)


def test_verify_passes_fresh_and_names_the_segment_for_each_tampering(tmp_path, keys):
    record_session(tmp_path, keys, frames=60)
    fresh = segments_of(tmp_path / "s1")
    n = len(fresh)
    assert n >= 5
    ok = _verify(tmp_path, keys, fresh)
    assert ok.ok, ok.lines()

    flipped = dict(fresh)
    body = bytearray(flipped[3])
    body[len(body) // 2] ^= 0x01
    flipped[3] = bytes(body)
    missing = {i: b for i, b in fresh.items() if i != 2}
    extra = {**fresh, n + 1: fresh[1]}
    reordered = {**fresh, 2: fresh[3], 3: fresh[2]}
    truncated = {i: b for i, b in fresh.items() if i < n}
    cut_tail = {**fresh, n: fresh[n][:-5]}
    cases = {"flipped": (flipped, 3, "altered"), "missing": (missing, 2, "missing"), "extra": (extra, n + 1, "extra"),
             "reordered": (reordered, 2, "reordered"), "truncated": (truncated, n, "missing"),
             "cut tail": (cut_tail, n, "altered or truncated")}
    for kind, (segments, bad, word) in cases.items():
        report = _verify(tmp_path, keys, segments)
        assert not report.ok and report.first_bad_segment == bad, (kind, report.lines())
        assert word in report.lines()[-1] and f"{bad:06d}" in report.lines()[-1], (kind, report.lines())

    # The final checkpoint dropped too: only a signed prefix remains, and verify says the end is missing.
    checkpoints = json.loads((tmp_path / "s1" / "checkpoints.json").read_text())
    prefix = _verify(tmp_path, keys, truncated, checkpoints[:-1])
    assert not prefix.ok and "no valid signed final checkpoint" in prefix.lines()[-1]

    other = FileSigner.load(tmp_path / "other.pem", create=True)
    wrong = _verify(tmp_path, keys, fresh, public=other.public_key)
    assert not wrong.ok and "wrong key" in wrong.lines()[-1] and keys.signer.key_id in wrong.lines()[-1]

    forged = [dict(c) for c in checkpoints]
    forged[-1]["text"] = forged[-1]["text"].replace(fresh_sha := forged[-1]["text"].splitlines()[-1][:64],
                                                    "0" * 64)
    assert fresh_sha != "0" * 64
    assert not _verify(tmp_path, keys, fresh, forged).ok


def test_reader_refuses_a_tampered_segment_after_serving_only_what_came_before(tmp_path, keys):
    record_session(tmp_path, keys)
    path = tmp_path / "s1" / "000002.guac"
    body = bytearray(path.read_bytes())
    body[30] ^= 0x80
    path.write_bytes(bytes(body))
    chunks = iter_recording(NoStore(), tmp_path, "s1", keys.keyring)
    served = b""
    with pytest.raises(TamperedError) as bad:
        for chunk in chunks:
            served += chunk
    assert bad.value.segment == 2 and served and b"sync" in served


def _sealing_for_30_seconds(root, keys):
    """A live session through a sealed spool, 30 frames a second apart (checkpoints signed on the way):
    its spool session and recorder, still open, for a test to kill."""
    clock = Clock()
    spool = SegmentSpool(root, max_bytes=400, max_seconds=60, sealing=keys)
    session = spool.open_session("s1", {"user": "u"})
    _use_clock(session, clock)
    rec = SessionRecorder(session, clock=clock)
    for i in range(30):
        batch = [Instruction("rect", 0, i, i, 10, 10), Instruction("sync", 5000 + 40 * i)]
        rec.server(batch, "".join(encode(x) for x in batch))
        clock.t += 1.0
        rec.seal_pending()
    return session, rec


def test_a_killed_gateway_leaves_a_signed_prefix_and_recovery_signs_the_rest(tmp_path, keys):
    session, rec = _sealing_for_30_seconds(tmp_path, keys)
    last = [Instruction("rect", 0, 1, 1, 10, 10), Instruction("sync", 9000)]
    rec.server(last, "".join(encode(x) for x in last))  # written, not yet sealed
    session.abandon()  # SIGKILL: nothing more runs in this process
    part = next((tmp_path / "s1").glob("*.part"))
    with open(part, "ab") as f:
        f.write(b"\x00\x00\x01")  # a torn record: its write never returned
    before = [Checkpoint.parse(c["text"]) for c in json.loads((tmp_path / "s1" / "checkpoints.json").read_text())]
    assert before and not before[-1].final  # the signed prefix the crash leaves
    SegmentSpool(tmp_path, max_bytes=400, max_seconds=60, sealing=keys).recover(tmp_path / "s1", "crash")
    checkpoints = json.loads((tmp_path / "s1" / "checkpoints.json").read_text())
    final = Checkpoint.parse(checkpoints[-1]["text"])
    assert final.final and final.end == "recovered" and final.segments[:len(before[-1].segments)] == before[-1].segments
    report = verify_sealed("s1", segments_of(tmp_path / "s1"), checkpoints, keys.signer.public_key)
    assert report.ok, report.lines()
    assert any("sealed after a gateway crash" in line for line in report.lines())
    data = b"".join(iter_recording(NoStore(), tmp_path, "s1", keys.keyring))
    assert parse_all(data)[-1] == ("sync", "9000")


def test_a_change_of_signing_key_verifies_with_both_keys_and_the_bundle_carries_both(tmp_path, keys):
    """Key A signs the session's first checkpoints, the gateway is killed, and its successor, with key B
    since, signs the recovered end: each key alone fails, naming the other; both trusted pass, and the
    evidence bundle carries both keys, its README's openssl steps verifying every checkpoint."""
    session, _ = _sealing_for_30_seconds(tmp_path, keys)
    session.abandon()  # SIGKILL
    old = keys.signer
    new = SealingKeys(keys.keyring, FileSigner.load(tmp_path / "keys" / "signing-2.pem", create=True),
                      checkpoint_seconds=5)
    SegmentSpool(tmp_path, max_bytes=400, max_seconds=60, sealing=new).recover(tmp_path / "s1", "crash")
    checkpoints = json.loads((tmp_path / "s1" / "checkpoints.json").read_text())
    signers = [Checkpoint.parse(c["text"]).signing_key for c in checkpoints]
    assert signers[0] == old.key_id and signers[-1] == new.signer.key_id
    segments = segments_of(tmp_path / "s1")

    for alone, other in ((old, new.signer), (new.signer, old)):
        report = verify_sealed("s1", segments, checkpoints, alone.public_key)
        assert not report.ok and f"names the signing key {other.key_id}, which is not among" in report.lines()[-1]
    both = verify_sealed("s1", segments, checkpoints, [old.public_key, new.signer.public_key])
    assert both.ok, both.lines()
    assert any("the signing key changed" in line for line in both.lines())

    def bundle(entries, name):
        manifest = {"segments": [{"index": i, "key": str(tmp_path / "s1" / f"{i:06d}.guac")} for i in sorted(segments)],
                    "sealing": {"checkpoints": entries}}
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            add_sealed(lambda z, member, chunks: z.writestr(member, b"".join(chunks)), zf, manifest,
                       lambda key: [Path(key).read_bytes()], new.signer.public_key)
        out = tmp_path / name
        with zipfile.ZipFile(path) as zf:
            zf.extractall(out)
            return out, zf.read("sealed/README.txt").decode()

    unzipped, readme = bundle(checkpoints, "bundle")
    fingerprints = run_step(readme, 2, unzipped)
    for signer in (old, new.signer):
        hex_id = signer.key_id.removeprefix("sha256:")
        assert f"sealed/public-keys/{hex_id}.pem {hex_id}  -" in fingerprints, fingerprints
    signatures = run_step(readme, 3, unzipped)
    assert signatures.count("Signature Verified Successfully") == len(checkpoints), signatures
    assert "BAD SIGNATURE" not in signatures

    # Checkpoints that carry another key than the one they name: that key is filed under its own
    # fingerprint, so the README's step 3 finds no key for the name and says BAD SIGNATURE.
    stranger = signed_entry(FileSigner.load(tmp_path / "stranger.pem", create=True), "x")["public_key"]
    forged = [{**c, "public_key": stranger} if name == old.key_id else c for c, name in zip(checkpoints, signers)]
    unzipped, readme = bundle(forged, "forged")
    assert not (unzipped / "sealed" / "public-keys" / f"{old.key_id.removeprefix('sha256:')}.pem").exists()
    assert "BAD SIGNATURE: sealed/checkpoints/01.txt" in run_step(readme, 3, unzipped)


def test_sealed_objects_decrypt_any_range_and_refuse_a_moved_or_altered_chunk(tmp_path):
    from gui_recorder.sealing.objects import CHUNK, ObjectSealer, is_sealed, plain_size

    sealer = ObjectSealer("s", os.urandom(32))
    plain = os.urandom(3 * CHUNK + 1234)
    source, target = tmp_path / "video.webm", tmp_path / "video.webm.sealed"
    source.write_bytes(plain)
    sealer.seal_file("video.webm", source, target)
    blob = target.read_bytes()
    assert is_sealed(blob) and plain_size(blob) == len(plain) and plain[:4096] not in blob

    def read(offset, n):
        return blob[offset:offset + n]

    for start, length in ((0, len(plain)), (100, 200), (CHUNK - 5, 10), (2 * CHUNK, CHUNK + 1234), (len(plain) - 1, 1)):
        assert b"".join(sealer.open_range("video.webm", read, len(plain), start, length)) == \
            plain[start:start + length]
    assert sealer.open_bytes("poster.jpg", b"\xff\xd8 plain legacy") == b"\xff\xd8 plain legacy"
    with pytest.raises(TamperedError):  # the same bytes under another object's name
        sealer.open_bytes("sprite.jpg", blob)
    altered = bytearray(blob)
    altered[-100] ^= 1
    with pytest.raises(TamperedError, match="chunk 3"):
        sealer.open_bytes("video.webm", bytes(altered))
