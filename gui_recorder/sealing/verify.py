"""Offline verification of a sealed recording, with only the signers' public keys.

Input is what anyone holding the objects or an evidence bundle has: the
ciphertext segments, the signed checkpoints and (optionally) the manifest. No
data key is needed: the checks are over ciphertext, which the signatures cover.
``verify_sealed`` reports what it checked and every problem, and names the
first bad segment: a flipped byte, a missing, extra, reordered or truncated
segment, a checkpoint signed by a key not among those trusted. Several keys may
be trusted at once: after the gateway's signing key changed, a session's older
checkpoints name the old key, and a crash recovered by a gateway with the new
key signs its end with that one.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gui_recorder.errors import TamperedError
from gui_recorder.sealing.chain import Checkpoint, chain_of
from gui_recorder.sealing.keys import fingerprint, verify_signature
from gui_recorder.sealing.records import frames


ENDS = {"clean": "ended by the gateway", "recovered": "sealed after a gateway crash, by the restarted gateway",
        "imported": "a guacd recording sealed when imported"}


@dataclass
class Report:
    session_id: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    first_bad_segment: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad(self, message: str, segment: int | None = None) -> None:
        self.problems.append(message)
        if segment is not None and (self.first_bad_segment is None or segment < self.first_bad_segment):
            self.first_bad_segment = segment

    def lines(self) -> list[str]:
        out = [f"session {self.session_id}"]
        out += [f"  ok    {line}" for line in self.checked]
        out += [f"  BAD   {line}" for line in self.problems]
        if self.ok:
            out.append("VERIFIED: every segment is present, unaltered, in order and covered by a valid signature")
        else:
            where = (f"first bad segment {self.first_bad_segment:06d}" if self.first_bad_segment is not None
                     else "the signatures")
            out.append(f"FAILED ({where}): {self.problems[0]}")
        return out

    def raise_for_problems(self) -> None:
        if self.problems:
            raise TamperedError(self.lines()[-1], self.session_id, self.first_bad_segment)


def trusted_keys(keys: Ed25519PublicKey | Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Public keys by fingerprint."""
    return {fingerprint(k): k for k in ([keys] if isinstance(keys, Ed25519PublicKey) else keys)}


def _signed(report: Report, checkpoints: list[dict], trusted: dict[str, Ed25519PublicKey]) -> list[Checkpoint]:
    """The checkpoints whose signature verifies with the key each names (problems reported for the others)."""
    given = ", ".join(trusted) or "none"
    report.checked.append(f"trusted public key(s): {given}")
    valid, used = [], set()
    for number, entry in enumerate(checkpoints, 1):
        try:
            cp = Checkpoint.parse(entry["text"])
            signature = base64.b64decode(entry["signature"])
        except (TamperedError, KeyError, ValueError) as exc:
            report.bad(f"checkpoint {number} is unreadable: {exc}")
            continue
        public = trusted.get(cp.signing_key)
        if cp.session_id != report.session_id:
            report.bad(f"checkpoint {number} belongs to session {cp.session_id}")
        elif public is None:
            report.bad(f"checkpoint {number} ({cp.at}) names the signing key {cp.signing_key}, which is not among "
                       f"the trusted public keys ({given}): wrong key, or give that key too")
        elif not verify_signature(public, signature, entry["text"].encode()):
            report.bad(f"checkpoint {number} ({cp.at}) does not verify with public key {cp.signing_key} "
                       "(the checkpoint or its signature was altered)")
        else:
            valid.append(cp)
            used.add(cp.signing_key)
    if checkpoints and len(valid) == len(checkpoints):
        report.checked.append(f"signatures: {len(valid)} checkpoint(s), each valid (Ed25519) with the key it names"
                              + (f" ({len(used)} keys: the signing key changed during the session)"
                                 if len(used) > 1 else ""))
    return valid


def verify_sealed(session_id: str, segments: dict[int, bytes], checkpoints: list[dict],
                  public: Ed25519PublicKey | Iterable[Ed25519PublicKey], manifest: dict | None = None) -> Report:
    """Check ``segments`` (index -> ciphertext, every one found) against the signed ``checkpoints``,
    each signed by one of the ``public`` keys trusted."""
    report = Report(session_id)
    if not checkpoints:
        report.bad("no signed checkpoint at all: nothing vouches for this recording")
        return report
    valid = _signed(report, checkpoints, trusted_keys(public))
    if not valid:
        return report
    finals = [cp for cp in valid if cp.final]
    reference = finals[-1] if finals else valid[-1]
    signed = dict(reference.segments)
    if not finals:
        report.bad(f"no valid signed final checkpoint: only a prefix of {len(signed)} segment(s) is signed "
                   f"(at {reference.at}); the end was cut off", len(signed) + 1)
    for cp in valid:
        if dict(cp.segments[:len(reference.segments)]) != dict(reference.segments[:len(cp.segments)]):
            report.bad(f"the checkpoint signed at {cp.at} disagrees with the final one about earlier segments")
    if chain_of(session_id, reference.segments) != reference.chain:
        report.bad("the signed chain head does not match the signed segment list")
    else:
        report.checked.append(f"chain: {len(signed)} segment(s), head {reference.chain[:16]}... as signed")
    if [i for i, _ in reference.segments] != list(range(1, len(signed) + 1)):
        report.bad("the signed segment list is not numbered 1..n")
    by_hash = {sha: index for index, sha in reference.segments}
    matching = 0
    for index, sha in reference.segments:
        data = segments.get(index)
        if data is None:
            report.bad(f"segment {index:06d} is missing (the signed checkpoint lists it)", index)
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual == sha:
            matching += 1
        elif actual in by_hash:
            report.bad(f"segment {index:06d} holds the content of segment {by_hash[actual]:06d}: reordered", index)
        else:
            report.bad(f"segment {index:06d} does not match its signed SHA-256: altered or truncated bytes", index)
    for index in sorted(set(segments) - set(signed)):
        report.bad(f"segment {index:06d} is extra: no signed checkpoint covers it", index)
    if matching == len(signed) and matching:
        report.checked.append(f"segments: {matching} present, each matching its signed SHA-256, none extra")
    last = segments.get(len(signed))
    last_intact = last is not None and hashlib.sha256(last).hexdigest() == signed.get(len(signed))
    if finals and reference.end in ("clean", "imported") and last_intact:
        try:
            records = list(frames(len(signed), last))
        except TamperedError as exc:
            report.bad(str(exc), len(signed))
        else:
            if not records or not records[-1][0]:
                report.bad(f"segment {len(signed):06d} lacks the final record: truncated", len(signed))
            else:
                report.checked.append("end: the last record carries the final flag (not cut off)")
    if finals:
        report.checked.append(f"end: {reference.end} ({ENDS.get(reference.end, 'unknown')})")
    times = [cp.at for cp in valid]
    if times != sorted(times):
        report.bad("the checkpoints' times go backwards")
    else:
        report.checked.append(f"times: {len(times)} checkpoint(s) signed from {times[0]} to {times[-1]}")
    if manifest is not None:
        listed = {s["index"]: s.get("sha256") for s in manifest.get("segments", [])}
        if listed != signed:
            changed = sorted(i for i in set(listed) | set(signed) if listed.get(i) != signed.get(i))
            report.bad(f"the manifest disagrees with the signed checkpoint about segment(s) "
                       f"{', '.join(f'{i:06d}' for i in changed[:5])}", changed[0] if changed else None)
        else:
            report.checked.append("manifest: its segment list matches the signed one")
    return report
