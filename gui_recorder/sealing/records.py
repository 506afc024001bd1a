"""The sealed segment format: a sequence of AES-256-GCM records, one per spool write.

Each spool ``write`` becomes one record, so the spool holds only ciphertext and
stays write-through: a killed gateway leaves whole records plus at most one torn
tail, which recovery cuts off (it was never forwarded: the write had not
returned). A record on disk::

    4 bytes  big-endian: bit 31 = final record of the recording, bits 0-30 = ciphertext length
    12 bytes nonce (random)
    n bytes  ciphertext with its 16-byte GCM tag

The associated data binds each record to its place: the session id, the
segment index, the record's index in the segment and the final flag, so a record
or segment swapped, reordered, moved to another session or cut off after the
final one fails to decrypt.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gui_recorder.errors import TamperedError

ALGORITHM = "AES-256-GCM records v1"
HEADER = struct.Struct(">I")
NONCE_BYTES = 12
TAG_BYTES = 16
FINAL_BIT = 1 << 31
MAX_RECORD = FINAL_BIT - 1
OVERHEAD = HEADER.size + NONCE_BYTES + TAG_BYTES


_PLACE = struct.Struct(">IIB")
NONCES_PER_FETCH = 256


def _ad_prefix(session_id: str) -> bytes:
    return b"gui-recorder seal v1\0" + session_id.encode() + b"\0"


def associated_data(session_id: str, segment: int, record: int, final: bool) -> bytes:
    return _ad_prefix(session_id) + _PLACE.pack(segment, record, final)


class RecordSealer:
    """Encrypts one session's records with its data key.

    Nonces are random, 96 bits each, as before, but fetched from the kernel 256 at a time: one
    getrandom(2) per record was a quarter of the cost of sealing it, on the relay's hot path (each
    spool write is a record). A sealer belongs to one session, whose writes are sequential.
    """

    def __init__(self, session_id: str, data_key: bytes):
        self.session_id = session_id
        self._aead = AESGCM(data_key)
        self._prefix = _ad_prefix(session_id)
        self._nonces, self._next = b"", 0

    def _nonce(self) -> bytes:
        if self._next >= len(self._nonces):
            self._nonces, self._next = os.urandom(NONCE_BYTES * NONCES_PER_FETCH), 0
        nonce = self._nonces[self._next:self._next + NONCE_BYTES]
        self._next += NONCE_BYTES
        return nonce

    def seal(self, segment: int, record: int, plaintext: bytes, final: bool = False) -> bytes:
        nonce = self._nonce()
        ct = self._aead.encrypt(nonce, plaintext, self._prefix + _PLACE.pack(segment, record, final))
        return HEADER.pack(len(ct) | (FINAL_BIT if final else 0)) + nonce + ct

    def open(self, segment: int, data: bytes, *, allow_torn_tail: bool = False) -> Iterator[bytes]:
        """The plaintext of each record of one segment, in order.

        Raises TamperedError naming the segment and record when a record does not decrypt in its place.
        ``allow_torn_tail``: a segment still being written may end in a record only partly on disk.
        """
        for record, (final, nonce, ct) in enumerate(frames(segment, data, allow_torn_tail=allow_torn_tail)):
            try:
                yield self._aead.decrypt(nonce, ct, associated_data(self.session_id, segment, record, final))
            except InvalidTag:
                raise TamperedError(f"segment {segment:06d} record {record} of session {self.session_id} "
                                    "does not decrypt in its place: altered, moved or from another key",
                                    session_id=self.session_id, segment=segment) from None


def frames(segment: int, data: bytes, *, allow_torn_tail: bool = False) -> Iterator[tuple[bool, bytes, bytes]]:
    """(final, nonce, ciphertext) of each record, reading only the framing: no key needed."""
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        if len(view) - offset < HEADER.size + NONCE_BYTES + TAG_BYTES:
            if allow_torn_tail:
                return
            raise TamperedError(f"segment {segment:06d} ends inside a record header at byte {offset}: truncated",
                                segment=segment)
        (word,) = HEADER.unpack_from(view, offset)
        length = word & MAX_RECORD
        start = offset + HEADER.size + NONCE_BYTES
        if length < TAG_BYTES or start + length > len(view):
            if allow_torn_tail:
                return
            raise TamperedError(f"segment {segment:06d} has a record at byte {offset} that runs past its end: "
                                "truncated or altered", segment=segment)
        yield bool(word & FINAL_BIT), bytes(view[offset + HEADER.size:start]), bytes(view[start:start + length])
        offset = start + length


def whole_length(data: bytes) -> tuple[int, int]:
    """(bytes of whole records, how many): where recovery cuts a torn tail off."""
    offset = count = 0
    while len(data) - offset >= OVERHEAD:
        (word,) = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + NONCE_BYTES + (word & MAX_RECORD)
        if (word & MAX_RECORD) < TAG_BYTES or end > len(data):
            break
        offset, count = end, count + 1
    return offset, count


def ends_final(data: bytes) -> bool:
    """Whether the last whole record carries the final flag (the recording's end was written)."""
    last = False
    for final, _nonce, _ct in frames(0, data, allow_torn_tail=True):
        last = final
    return last
