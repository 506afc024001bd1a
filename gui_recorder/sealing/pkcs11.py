"""Sealing keys inside a PKCS#11 token (SoftHSM2 in the tests, an HSM in production).

The KEK is an AES-256 key that never leaves the token: wrapping a data key is
the token's AES-GCM over it, bound to the session (associated data). The
signing key is an Ed25519 pair (CKM_EDDSA); its public half is exported only to
name and check it. One token session per process, behind a lock: PKCS#11
sessions are not safe to use from two threads at once.
"""

from __future__ import annotations

import os
import threading

import pkcs11
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from gui_recorder.errors import ConfigError, KeyUnavailableError
from gui_recorder.sealing.keys import fingerprint
from gui_recorder.settings import Settings

ED25519_PARAMS = bytes.fromhex("06032b6570")  # DER OID 1.3.101.112 (id-Ed25519), the curve's EC parameters
_sessions: dict[tuple, tuple[pkcs11.Session, threading.Lock]] = {}
_open_lock = threading.Lock()


def _session(settings: Settings) -> tuple[pkcs11.Session, threading.Lock]:
    if not (settings.seal_pkcs11_module and settings.seal_pkcs11_token and settings.seal_pkcs11_pin):
        raise ConfigError("PKCS#11 sealing needs seal_pkcs11_module, seal_pkcs11_token and seal_pkcs11_pin")
    key = (str(settings.seal_pkcs11_module), settings.seal_pkcs11_token, os.environ.get("SOFTHSM2_CONF"))
    with _open_lock:
        if key not in _sessions:
            try:
                token = pkcs11.lib(str(settings.seal_pkcs11_module)).get_token(token_label=settings.seal_pkcs11_token)
                session = token.open(user_pin=settings.seal_pkcs11_pin.get_secret_value(), rw=True)
            except (pkcs11.PKCS11Error, RuntimeError) as exc:
                raise KeyUnavailableError(f"cannot open the PKCS#11 token: {type(exc).__name__} {exc}",
                                          f"pkcs11:{settings.seal_pkcs11_token}") from exc
            _sessions[key] = (session, threading.Lock())
        return _sessions[key]


class Pkcs11Kek:
    def __init__(self, session: pkcs11.Session, lock: threading.Lock, token: str, label: str):
        self.kek_id = f"pkcs11:{token}/{label}"
        self._lock = lock
        try:
            self._key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            raise KeyUnavailableError("the token holds no (or more than one) AES key-encryption key labelled "
                                      f"{label!r}", self.kek_id) from exc

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        with self._lock:
            return nonce + self._key.encrypt(data_key, mechanism=Mechanism.AES_GCM,
                                             mechanism_param=GCMParams(nonce, context))

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            with self._lock:
                return self._key.decrypt(blob[12:], mechanism=Mechanism.AES_GCM,
                                         mechanism_param=GCMParams(blob[:12], context))
        except pkcs11.PKCS11Error as exc:
            raise KeyUnavailableError("the data key does not unwrap with this token key (wrong key, or the "
                                      f"envelope was altered): {type(exc).__name__}", self.kek_id) from exc


class Pkcs11Signer:
    def __init__(self, session: pkcs11.Session, lock: threading.Lock, token: str, label: str):
        self._lock = lock
        try:
            self._private = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS, label=label)
            public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.EC_EDWARDS, label=label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as exc:
            raise KeyUnavailableError(f"the token holds no Ed25519 key pair labelled {label!r}",
                                      f"pkcs11:{token}/{label}") from exc
        point = public[Attribute.EC_POINT]
        # CKA_EC_POINT is the raw 32-byte point, DER-wrapped as an OCTET STRING by most tokens.
        raw = point[2:] if len(point) == 34 and point[0] == 0x04 else point
        self.public_key = Ed25519PublicKey.from_public_bytes(raw)
        self.key_id = fingerprint(self.public_key)

    def sign(self, message: bytes) -> bytes:
        with self._lock:
            return self._private.sign(message, mechanism=Mechanism.EDDSA)


def token_keks(settings: Settings) -> tuple[Pkcs11Kek, list[Pkcs11Kek]]:
    session, lock = _session(settings)
    token = settings.seal_pkcs11_token
    return (Pkcs11Kek(session, lock, token, settings.seal_pkcs11_kek_label),
            [Pkcs11Kek(session, lock, token, label) for label in settings.seal_pkcs11_retired_kek_labels])


def token_signer(settings: Settings) -> Pkcs11Signer:
    session, lock = _session(settings)
    return Pkcs11Signer(session, lock, settings.seal_pkcs11_token, settings.seal_pkcs11_signing_label)


def provision(settings: Settings, kek_label: str | None = None, signing: bool = True) -> None:
    """Create the token's KEK (``kek_label``, default the current one) and signing pair if absent."""
    session, lock = _session(settings)
    label = kek_label or settings.seal_pkcs11_kek_label
    with lock:
        if not list(session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label})):
            session.generate_key(KeyType.AES, 256, label=label, store=True, template={
                Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
        signing_label = settings.seal_pkcs11_signing_label
        if signing and not list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                     Attribute.LABEL: signing_label})):
            session.generate_keypair(KeyType.EC_EDWARDS, label=signing_label, store=True,
                                     public_template={Attribute.EC_PARAMS: ED25519_PARAMS},
                                     private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
