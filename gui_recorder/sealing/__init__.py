"""Sealing: recordings encrypted at rest, chained, signed, verifiable with only a public key (issue 13).

    spool write ──> records.seal_record (AES-256-GCM, per-session data key)
    segment sealed ──> chain.link (SHA-256 of the ciphertext, chained)
                   ──> chain.Checkpoint signed (Ed25519) every N seconds and at the end
    data key ──> keys.KeyRing wraps it with a KEK (a key file, or a PKCS#11 token)
    anyone ──> verify.verify_sealed (ciphertext, manifest, checkpoints, public key): no secret needed

Pure: bytes in, bytes and reports out. It imports no store or database, so the
recording, storage, worker and gateway layers can all use it.
"""
