"""Sealed objects: rendered media (video, sprite, poster, thumbnail index) under the session's data key.

An object is a header and fixed-size AES-256-GCM chunks, so a byte range of the
plaintext (a browser seeking the video with ``Range``) decrypts from just the
chunks it touches, memory bounded by one chunk::

    16 bytes  magic "GR-SEALED-OBJ-1\\n"
     8 bytes  big-endian plaintext length
    then per 64 KiB of plaintext: 12 bytes nonce, the ciphertext, 16 bytes tag

Each chunk's associated data names the session, the object and the chunk's
index, and flags the last one, so chunks cannot be moved, swapped between
objects or sessions, or cut off undetected. Objects without the magic are
plain (rendered before sealing): readers pass them through.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gui_recorder.errors import TamperedError

MAGIC = b"GR-SEALED-OBJ-1\n"
HEADER = len(MAGIC) + 8
CHUNK = 64 << 10
SEALED_CHUNK = 12 + CHUNK + 16


def _ad(session_id: str, name: str, index: int, final: bool) -> bytes:
    return (b"gui-recorder object v1\0" + session_id.encode() + b"\0" + name.encode() + b"\0"
            + struct.pack(">IB", index, final))


def is_sealed(head: bytes) -> bool:
    return head.startswith(MAGIC)


def plain_size(head: bytes) -> int:
    return struct.unpack_from(">Q", head, len(MAGIC))[0]


class ObjectSealer:
    def __init__(self, session_id: str, data_key: bytes):
        self.session_id = session_id
        self._aead = AESGCM(data_key)

    def seal_file(self, name: str, source: Path, target: Path) -> None:
        size = source.stat().st_size
        chunks = max(1, -(-size // CHUNK))
        with open(source, "rb") as src, open(target, "wb") as out:
            out.write(MAGIC + struct.pack(">Q", size))
            for index in range(chunks):
                nonce = os.urandom(12)
                out.write(nonce + self._aead.encrypt(nonce, src.read(CHUNK),
                                                     _ad(self.session_id, name, index, index == chunks - 1)))

    def seal_bytes(self, name: str, data: bytes) -> bytes:
        chunks = max(1, -(-len(data) // CHUNK))
        out = [MAGIC + struct.pack(">Q", len(data))]
        for index in range(chunks):
            nonce = os.urandom(12)
            out.append(nonce + self._aead.encrypt(nonce, data[index * CHUNK:(index + 1) * CHUNK],
                                                  _ad(self.session_id, name, index, index == chunks - 1)))
        return b"".join(out)

    def open_range(self, name: str, read: Callable[[int, int], bytes], size: int, start: int = 0,
                   length: int | None = None) -> Iterator[bytes]:
        """Plaintext bytes [start, start+length) of a sealed object of plaintext ``size``; ``read(offset,
        length)`` fetches ciphertext. Raises TamperedError naming the chunk that fails its tag."""
        length = size - start if length is None else length
        if length <= 0:
            return
        chunks = max(1, -(-size // CHUNK))
        first, last = start // CHUNK, (start + length - 1) // CHUNK
        for index in range(first, last + 1):
            plain_len = min(CHUNK, size - index * CHUNK)
            blob = read(HEADER + index * SEALED_CHUNK, 12 + plain_len + 16)
            try:
                plain = self._aead.decrypt(blob[:12], blob[12:], _ad(self.session_id, name, index,
                                                                     index == chunks - 1))
            except InvalidTag:
                raise TamperedError(f"chunk {index} of {name} of session {self.session_id} does not decrypt in its "
                                    "place: altered, moved or from another key", self.session_id) from None
            lo = start - index * CHUNK if index == first else 0
            hi = start + length - index * CHUNK if index == last else plain_len
            yield plain[lo:hi]

    def open_bytes(self, name: str, data: bytes) -> bytes:
        if not is_sealed(data):
            return data
        size = plain_size(data)
        return b"".join(self.open_range(name, lambda offset, n: data[offset:offset + n], size))
