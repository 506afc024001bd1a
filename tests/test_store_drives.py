"""Erasure-coded MinIO (issue 17, item 5): a drive taken away mid-session loses nothing, and it shows.

A real MinIO with four drives (four directories: erasure-coded, parity 2) holds
the recordings of a second real gateway process; mid-session one drive's
directory is taken away (renamed: the path MinIO holds is gone). Uploads and
reads go on; `/api/health` and `/metrics` report the offline drive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import httpx
import pytest

from conftest import wait_for
from gui_recorder.protocol import parse_all
from gui_recorder.stack import Stack
from gui_recorder.storage.keys import manifest_key, session_prefix
from gui_recorder.text.keys import decode_keys
from support.clients import TunnelClient
from support.peers import Peer

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def erasure_minio(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("minio4"), guacd=False, minio=True, vnc=False, rdp=False,
               minio_drives=4) as running:
        yield running.info.minio


@pytest.fixture
def peer_on_erasure_minio(gateway, stack, erasure_minio, tmp_path):
    """A gateway with its own database (seeded like the main one) whose store is the 4-drive MinIO."""
    from gui_recorder.stack.demo import seed_demo

    var = tmp_path / "peer"
    var.mkdir(mode=0o700)
    url = f"sqlite:///{var / 'gui-recorder.db'}"
    seed_demo(gateway.settings.model_copy(update={"var_dir": var, "database_url": url}), stack, gateway.accounts)
    with Peer.beside(gateway, var, GUI_RECORDER_DATABASE_URL=url, GUI_RECORDER_S3_ENDPOINT=erasure_minio.endpoint,
                     GUI_RECORDER_S3_ACCESS_KEY=erasure_minio.access_key,
                     GUI_RECORDER_S3_SECRET_KEY=erasure_minio.secret_key,
                     GUI_RECORDER_SEGMENT_MAX_SECONDS="1") as peer:
        yield peer


def objects(minio, bucket: str, prefix: str) -> dict[str, bytes]:
    return {o.object_name: minio.get_object(o.bucket_name, o.object_name).read()
            for o in minio.list_objects(bucket, prefix=prefix, recursive=True)}


async def test_a_drive_taken_away_mid_session_loses_nothing(gateway, erasure_minio, peer_on_erasure_minio):
    from minio import Minio

    peer, bucket = peer_on_erasure_minio, gateway.settings.tiers[0].bucket
    minio = Minio(erasure_minio.endpoint, erasure_minio.access_key, erasure_minio.secret_key, secure=False)
    health = httpx.get(peer.url + "api/health").json()["components"]["object_store"]
    assert health == {"status": "ok", "drives": {"ok": 4}}

    with peer.api("vendor") as vendor:
        token = vendor.post("/api/connections/demo-vnc/tunnel-token").raise_for_status().json()["token"]
    client = await TunnelClient.open(peer.url, token)
    try:
        await client.first_frame()
        await client.type("echo before the loss\n")
        sid = client.session_id
        await asyncio.to_thread(wait_for, lambda: any("/segments/" in k for k in objects(minio, bucket, session_prefix(sid))),
                                60, 0.2, "a first segment in the store")

        drive = erasure_minio.drives[1]
        os.rename(drive, drive + ".away")  # the drive is gone under a running MinIO
        degraded = await asyncio.to_thread(
            wait_for, lambda: (h := httpx.get(peer.url + "api/health").json()["components"]["object_store"])
            ["status"] == "degraded" and h, 60, 0.5, "the store to report the lost drive")
        assert degraded["drives"] == {"ok": 3, "offline": 1}
        metrics = httpx.get(peer.url + "metrics").text
        assert 'gr_store_drives{state="offline"} 1.0' in metrics and 'gr_store_drives{state="ok"} 3.0' in metrics

        await client.type("echo after the loss\n")
    finally:
        await client.disconnect()

    with peer.api("admin") as admin:
        await asyncio.to_thread(wait_for, lambda: admin.get(f"/api/sessions/{sid}").json().get("recording_complete"),
                                60, 0.3, "the recording to complete on three drives")
        recording = admin.get(f"/api/sessions/{sid}/recording").raise_for_status().content
    typed = [line.text for line in decode_keys(parse_all(recording))]
    assert "echo before the loss" in typed and "echo after the loss" in typed, typed
    # Every segment the manifest names is in the store, whole, byte for byte as sealed in the spool.
    stored = objects(minio, bucket, session_prefix(sid))
    manifest = json.loads(stored[manifest_key(sid)])
    assert manifest["segments"] and len(manifest["segments"]) == len([k for k in stored if "/segments/" in k])
    for segment in manifest["segments"]:
        data = stored[segment["key"]]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (segment["size"], segment["sha256"]), segment["key"]
    # Sealed: the store holds ciphertext; what it decrypts to is the whole recording the API served.
    assert sum(s["plain_size"] for s in manifest["segments"]) == len(recording)
    assert b".key," not in b"".join(stored[s["key"]] for s in manifest["segments"])
