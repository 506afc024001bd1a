"""The sealing keys the settings name: KEKs and the signing key, from key files or a PKCS#11 token.

File keys under ``var_dir/keys`` are created (0600) on first use, so ``make run``
seals from the start; a key file named explicitly in the settings must exist.
"""

from __future__ import annotations

from gui_recorder.sealing.keys import FileKek, FileSigner, KeyRing, SealingKeys
from gui_recorder.settings import Settings


def keyring(settings: Settings) -> KeyRing:
    if settings.seal_kek_provider == "pkcs11":
        from gui_recorder.sealing.pkcs11 import token_keks  # python-pkcs11 loads only when configured

        current, retired = token_keks(settings)
        return KeyRing(current, retired + [FileKek.load(p) for p in settings.seal_retired_kek_files])
    current = FileKek.load(settings.resolved_seal_kek_file, create=settings.seal_kek_file is None)
    return KeyRing(current, [FileKek.load(p) for p in settings.seal_retired_kek_files])


def signer(settings: Settings):
    if settings.seal_signing_provider == "pkcs11":
        from gui_recorder.sealing.pkcs11 import token_signer

        return token_signer(settings)
    return FileSigner.load(settings.resolved_seal_signing_key_file, create=settings.seal_signing_key_file is None)


def sealing_keys(settings: Settings) -> SealingKeys:
    return SealingKeys(keyring(settings), signer(settings), settings.seal_checkpoint_seconds)
