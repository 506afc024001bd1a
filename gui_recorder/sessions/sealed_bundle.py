"""The sealed part of an evidence bundle: ciphertext as stored, signed checkpoints, the signers' public keys, a README.

A court's expert checks it with standard tools only (``sha256sum``, ``openssl``,
``python3`` without our package); ``gui-recorder verify bundle.zip`` does the
same checks at once. Layout inside the zip::

    sealed/segments/000001.guac         each segment exactly as stored (AES-256-GCM records)
    sealed/checkpoints/01.txt, 01.sig   each signed checkpoint and its raw Ed25519 signature
    sealed/public-keys/<hex>.pem        the public key of each checkpoint's signer, named by the
                                        SHA-256 of its DER form (its fingerprint): one file, or
                                        more when the gateway's signing key changed meanwhile
    sealed/README.txt                   how to verify by hand
"""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gui_recorder.sealing.chain import Checkpoint
from gui_recorder.sealing.keys import entry_public_key, fingerprint, public_key_pem

PREFIX = "sealed/"

README = """Verifying this recording by hand
================================

The recording was encrypted (AES-256-GCM) and its segments chained (SHA-256) and
signed (Ed25519) by the gateway while the session ran. These steps need only
sha256sum, openssl (1.1.1 or later) and python3. Run them in the unzipped bundle.

1. The bundle is complete:           sha256sum -c SHA256SUMS

2. The public keys are the gateway's: each key's fingerprint (printed beside
   its file) must be one your organisation published, not only its file name:

       for k in sealed/public-keys/*.pem; do
         echo "$k $(openssl pkey -pubin -in "$k" -outform DER | sha256sum)"; done

3. Each checkpoint is signed by the key it names on its "signing-key" line
   ("Signature Verified Successfully"):

       for c in sealed/checkpoints/*.txt; do
         k=$(sed -n 's/^signing-key sha256://p' "$c")
         openssl pkeyutl -verify -pubin -inkey "sealed/public-keys/$k.pem" -rawin \\
           -in "$c" -sigfile "${c%.txt}.sig" || echo "BAD SIGNATURE: $c"; done

4. The last checkpoint ({final}) says "final yes". Every segment it lists is
   present and unaltered, and there are no others:

       cd sealed && grep '  segments/' checkpoints/{final} | sha256sum -c - ; ls segments | wc -l
       (the count must equal the "segments" line of the checkpoint)

5. The chain head (optional: steps 3 and 4 already cover every segment):

       python3 - sealed/checkpoints/{final} <<'PY'
       import hashlib, struct, sys
       lines = open(sys.argv[1]).read().splitlines()
       head = dict(l.split(" ", 1) for l in lines[1:10])
       chain = hashlib.sha256(b"gui-recorder chain v1\\0" + head["session"].encode()).digest()
       for l in lines[10:]:
           sha, name = l.split("  ")
           index = int(name[len("segments/"):-len(".guac")])
           chain = hashlib.sha256(chain + struct.pack(">I", index) + bytes.fromhex(sha)).digest()
       print("chain OK" if chain.hex() == head["chain"] else "CHAIN MISMATCH")
       PY

recording.guac is the gateway's decryption of these segments for playback; the
segments' own records are bound to their session, segment and position, so any
swap or cut fails to decrypt as well.
"""


def add_sealed(add: Callable[[zipfile.ZipFile, str, object], None], zf: zipfile.ZipFile, manifest: dict,
               segment_bytes: Callable[[str], object], current: Ed25519PublicKey) -> None:
    """Add the sealed members of a sealed session's bundle through ``add`` (which records SHA256SUMS).

    The signers' keys come from the checkpoints (each carries its signer's public key) and, for
    checkpoints from before they did, from the gateway's ``current`` key when that is the one named.
    A key is added under the fingerprint it really has, so a checkpoint whose carried key does not
    match the key it names finds no key file and fails step 3.
    """
    for segment in manifest.get("segments", []):
        add(zf, f"{PREFIX}segments/{segment['index']:06d}.guac", segment_bytes(segment["key"]))
    checkpoints = manifest["sealing"].get("checkpoints", [])
    final = "none"
    keys = {fingerprint(current): current}
    named = set()
    for number, entry in enumerate(checkpoints, 1):
        add(zf, f"{PREFIX}checkpoints/{number:02d}.txt", [entry["text"].encode()])
        add(zf, f"{PREFIX}checkpoints/{number:02d}.sig", [base64.b64decode(entry["signature"])])
        checkpoint = Checkpoint.parse(entry["text"])
        named.add(checkpoint.signing_key)
        if (carried := entry_public_key(entry)) is not None:
            keys.setdefault(fingerprint(carried), carried)
        if checkpoint.final:
            final = f"{number:02d}.txt"
    for key_id in sorted(named & set(keys)):
        add(zf, f"{PREFIX}public-keys/{key_id.removeprefix('sha256:')}.pem", [public_key_pem(keys[key_id])])
    add(zf, f"{PREFIX}README.txt", [README.replace("{final}", final).encode()])


def read_sealed(zf: zipfile.ZipFile) -> tuple[dict[int, bytes], list[dict]]:
    """(segments by index, checkpoints) from a bundle, for ``sealing.verify``."""
    segments, texts, signatures = {}, {}, {}
    for name in zf.namelist():
        if name.startswith(PREFIX + "segments/") and name.endswith(".guac"):
            segments[int(name.rsplit("/", 1)[1][:-5])] = zf.read(name)
        elif name.startswith(PREFIX + "checkpoints/"):
            stem, _, ext = name.rsplit("/", 1)[1].partition(".")
            (texts if ext == "txt" else signatures)[stem] = zf.read(name)
    checkpoints = [{"text": texts[k].decode(), "signature": base64.b64encode(signatures.get(k, b"")).decode()}
                   for k in sorted(texts)]
    return segments, checkpoints
