"""The keys of sealing: per-session data keys wrapped by a key-encryption key, and the signing key.

A data key is random, one per session, and exists outside memory only wrapped
(AES-256-GCM, bound to its session id) by a KEK from a provider: a key file
(``FileKek``, the default for ``make run``) or an AES key inside a PKCS#11 token
(``Pkcs11Kek``, e.g. SoftHSM2 or a real HSM: the KEK never leaves it). The
``KeyRing`` wraps new data keys with its current KEK and unwraps with any KEK it
holds, so rotation is: make a new KEK current, keep the old one as retired,
``rewrap`` every envelope (segments are never touched), then retire the old one.

The signing key is Ed25519 (a PEM file, or a key pair in the token); its id is
the SHA-256 fingerprint of its public key in DER (SubjectPublicKeyInfo), which
``openssl pkey -pubin -in key.pem -outform DER | sha256sum`` also prints.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gui_recorder.errors import ConfigError, KeyUnavailableError

DATA_KEY_BYTES = 32
ENVELOPE_VERSION = 1


def _wrap_context(session_id: str, data_key_id: str) -> bytes:
    return b"gui-recorder data key v1\0" + session_id.encode() + b"\0" + data_key_id.encode()


def write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 with ``data`` (never readable by others, never seen half-written); refuses to
    overwrite (FileExistsError): the gateway and the worker may both create it at their first start."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # atomic, and fails if another process made it first
    finally:
        tmp.unlink(missing_ok=True)


class Kek(Protocol):
    kek_id: str

    def wrap(self, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...


class FileKek:
    """A 256-bit KEK in a local file (hex), created 0600."""

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ConfigError("a key-encryption key must be 32 bytes (64 hex digits)")
        self._aead = AESGCM(key)
        self.kek_id = "file:" + hashlib.sha256(b"gui-recorder kek id\0" + key).hexdigest()[:16]

    @classmethod
    def load(cls, path: Path, create: bool = False) -> FileKek:
        if not path.exists():
            if not create:
                raise KeyUnavailableError(f"the key-encryption key file {path} does not exist", str(path))
            with contextlib.suppress(FileExistsError):  # another process (the worker) made it first
                write_secret_file(path, os.urandom(32).hex().encode() + b"\n")
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except ValueError as exc:
            raise ConfigError(f"the key-encryption key file {path} is not 64 hex digits") from exc

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context)
        except InvalidTag:
            raise KeyUnavailableError("the data key does not unwrap with this key-encryption key "
                                      "(wrong key, or the envelope was altered)", self.kek_id) from None


@dataclass
class DataKey:
    key: bytes
    envelope: dict  # what is stored: ids and the wrapped key, never the key itself


class KeyRing:
    """The current KEK (wraps) and retired ones (still unwrap until every envelope is rewrapped)."""

    def __init__(self, current: Kek, retired: list[Kek] | tuple = ()):
        self.current = current
        self.keks = {k.kek_id: k for k in (*retired, current)}

    def new_data_key(self, session_id: str) -> DataKey:
        key = os.urandom(DATA_KEY_BYTES)
        data_key_id = uuid.uuid4().hex
        wrapped = self.current.wrap(key, _wrap_context(session_id, data_key_id))
        return DataKey(key, {"version": ENVELOPE_VERSION, "session_id": session_id, "data_key_id": data_key_id,
                             "algorithm": "AES-256-GCM", "kek_id": self.current.kek_id,
                             "wrapped": base64.b64encode(wrapped).decode()})

    def open(self, envelope: dict) -> bytes:
        kek = self.keks.get(envelope.get("kek_id", ""))
        if kek is None:
            raise KeyUnavailableError(f"the data key {envelope.get('data_key_id')} of session "
                                      f"{envelope.get('session_id')} is wrapped by a key-encryption key this "
                                      "gateway does not hold", str(envelope.get("kek_id")))
        return kek.unwrap(base64.b64decode(envelope["wrapped"]),
                          _wrap_context(envelope["session_id"], envelope["data_key_id"]))

    def rewrap(self, envelope: dict) -> dict | None:
        """The envelope wrapped by the current KEK; None when it already is (nothing to write)."""
        if envelope.get("kek_id") == self.current.kek_id:
            return None
        key = self.open(envelope)
        wrapped = self.current.wrap(key, _wrap_context(envelope["session_id"], envelope["data_key_id"]))
        return {**envelope, "kek_id": self.current.kek_id, "wrapped": base64.b64encode(wrapped).decode()}


def public_key_der(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(public: Ed25519PublicKey) -> str:
    return "sha256:" + hashlib.sha256(public_key_der(public)).hexdigest()


def load_public_key(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data) if b"BEGIN" in data else serialization.load_der_public_key(data)
    except ValueError as exc:
        raise ConfigError(f"not a public key (PEM or DER): {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the public key is not an Ed25519 key")
    return key


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def signed_entry(signer: Signer, text: str) -> dict:
    """A checkpoint as stored: its text, the signature, and the signer's public key (raw, base64).

    The public key rides along so that an evidence bundle can carry the key of each checkpoint's
    signer after the gateway's signing key has changed; trust still comes from the fingerprints an
    auditor was given, never from the key that came with the signature.
    """
    return {"text": text, "signature": base64.b64encode(signer.sign(text.encode())).decode(),
            "public_key": base64.b64encode(signer.public_key.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()}


def entry_public_key(entry: dict) -> Ed25519PublicKey | None:
    """The public key a stored checkpoint carries, if any (checkpoints before it carried none)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))
    except (KeyError, ValueError, TypeError):
        return None


class Signer(Protocol):
    key_id: str
    public_key: Ed25519PublicKey

    def sign(self, message: bytes) -> bytes: ...


class FileSigner:
    """An Ed25519 signing key in a PEM file (PKCS#8), created 0600."""

    def __init__(self, private: Ed25519PrivateKey):
        self._private = private
        self.public_key = private.public_key()
        self.key_id = fingerprint(self.public_key)

    @classmethod
    def load(cls, path: Path, create: bool = False) -> FileSigner:
        if not path.exists():
            if not create:
                raise KeyUnavailableError(f"the signing key file {path} does not exist", str(path))
            pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption())
            with contextlib.suppress(FileExistsError):
                write_secret_file(path, pem)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), None)
        except ValueError as exc:
            raise ConfigError(f"the signing key file {path} is not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"the signing key file {path} is not an Ed25519 key")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


@dataclass
class SealingKeys:
    """What a gateway seals with: the key ring for data keys and the checkpoint signer."""

    keyring: KeyRing
    signer: Signer
    checkpoint_seconds: float = 30.0
