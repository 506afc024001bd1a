"""The hash chain over a session's sealed segments, and the signed checkpoints over it.

``link``: each segment's chain value is SHA-256(previous chain value, its index,
SHA-256 of its ciphertext), starting from a value derived from the session id,
so removing, inserting or reordering a segment changes every later value.

A checkpoint is a small text the gateway signs (Ed25519) every N seconds and
at the end; it lists every segment so far in ``sha256sum`` format, so a reviewer
checks a bundle with standard tools::

    gui-recorder checkpoint v1
    session 5b0c...
    segments 3
    chain 9f2e...
    final yes               (no: a prefix signed while the session ran)
    end clean               (clean | recovered: sealed after a gateway crash | open)
    at 2026-12-01T16:40:00.123Z
    signing-key sha256:ab12...
    data-key 0c1d...
    algorithm AES-256-GCM records v1
    <sha256>  segments/000001.guac
    ...
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gui_recorder.errors import TamperedError

MAGIC = "gui-recorder checkpoint v1"


def genesis(session_id: str) -> str:
    return hashlib.sha256(b"gui-recorder chain v1\0" + session_id.encode()).hexdigest()


def link(previous: str, index: int, segment_sha256: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + struct.pack(">I", index)
                          + bytes.fromhex(segment_sha256)).hexdigest()


def segment_name(index: int) -> str:
    return f"segments/{index:06d}.guac"


@dataclass
class Checkpoint:
    session_id: str
    chain: str
    final: bool
    end: str  # clean | recovered | open
    at: str  # ISO-8601 UTC, wall clock
    signing_key: str
    data_key: str
    algorithm: str
    segments: list[tuple[int, str]] = field(default_factory=list)  # (index, sha256)

    def text(self) -> str:
        lines = [MAGIC, f"session {self.session_id}", f"segments {len(self.segments)}", f"chain {self.chain}",
                 f"final {'yes' if self.final else 'no'}", f"end {self.end}", f"at {self.at}",
                 f"signing-key {self.signing_key}", f"data-key {self.data_key}", f"algorithm {self.algorithm}"]
        lines += [f"{sha}  {segment_name(index)}" for index, sha in self.segments]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.splitlines()
        if not lines or lines[0] != MAGIC:
            raise TamperedError("not a gui-recorder checkpoint")
        head: dict[str, str] = {}
        segments = []
        for line in lines[1:]:
            if "  segments/" in line:
                sha, _, name = line.partition("  ")
                segments.append((int(name.removeprefix("segments/").removesuffix(".guac")), sha))
            else:
                name, _, value = line.partition(" ")
                head[name] = value
        try:
            checkpoint = cls(head["session"], head["chain"], head["final"] == "yes", head["end"], head["at"],
                             head["signing-key"], head["data-key"], head["algorithm"], segments)
        except KeyError as exc:
            raise TamperedError(f"checkpoint lacks its {exc.args[0]!r} line") from None
        if int(head.get("segments", -1)) != len(segments):
            raise TamperedError("checkpoint's segment count does not match its list")
        return checkpoint


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def chain_of(session_id: str, segments: list[tuple[int, str]]) -> str:
    value = genesis(session_id)
    for index, sha in segments:
        value = link(value, index, sha)
    return value
