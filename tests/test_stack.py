"""The real stack answers: guacd reaches both targets, errors are typed, MinIO stores."""

from __future__ import annotations

import io
import uuid

import pytest

from gui_recorder.errors import GuacdError, GuacdUnreachable
from gui_recorder.guacd import ClientInfo, ConnectionDefinition, open_guacd
from gui_recorder.stack.process import free_port


async def first_frame(stack, target, **overrides):
    definition = ConnectionDefinition(target.protocol, {**target.guacd_parameters(), **overrides})
    conn = await open_guacd(stack.guacd.host, stack.guacd.port, definition, ClientInfo(1024, 768))
    try:
        return conn.connection_id, await conn.read_until("sync", timeout=30)
    finally:
        await conn.close()


@pytest.mark.parametrize("protocol", ["vnc", "rdp"])
async def test_guacd_connects_to_target_and_draws(stack, protocol):
    connection_id, instructions = await first_frame(stack, getattr(stack, protocol))
    assert connection_id.startswith("$")
    opcodes = [i.opcode for i in instructions]
    assert {"size", "img", "sync"} <= set(opcodes)
    size = next(i for i in instructions if i.opcode == "size" and i[1] == "0")
    assert (int(size[2]), int(size[3])) == (1024, 768)


async def test_wrong_rdp_password_is_typed_519(stack):
    with pytest.raises(GuacdError) as info:
        await first_frame(stack, stack.rdp, password="not-the-password")
    assert info.value.status == 519


async def test_unreachable_guacd_is_typed():
    with pytest.raises(GuacdUnreachable):
        await open_guacd("127.0.0.1", free_port(), ConnectionDefinition("vnc", {}), timeout=3)


def test_minio_put_and_get(stack, minio_client):
    bucket = "stack-test"
    if not minio_client.bucket_exists(bucket):
        minio_client.make_bucket(bucket)
    payload = uuid.uuid4().bytes * 1000
    minio_client.put_object(bucket, "probe", io.BytesIO(payload), len(payload))
    response = minio_client.get_object(bucket, "probe")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()
