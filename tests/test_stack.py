"""The real stack answers: guacd reaches both targets, errors are typed, MinIO stores."""

from __future__ import annotations

import io
import os
import pwd
import subprocess
import uuid
from pathlib import Path

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


def _status(pid: int) -> dict[str, list[str]]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.split() for k, _, v in (line.partition(":") for line in lines)}


def test_demo_desktops_are_no_root_shell(stack):
    """Xvfb, xterm, x11vnc and freerdp-shadow run as the unprivileged demo account; the
    xterm's shell starts in that account's own home, outside the project and var/."""
    assert os.geteuid() == 0, "run as root, as setup and CI do: otherwise nothing is dropped"
    demo = pwd.getpwnam(stack.demo_user)
    assert demo.pw_uid != 0 and demo.pw_gid != 0
    home = Path(demo.pw_dir).resolve()
    project = Path(__file__).resolve().parent.parent
    assert not home.is_relative_to(project) and not home.is_relative_to(Path(stack.var_dir))
    assert home.stat().st_uid == demo.pw_uid and home.stat().st_mode & 0o077 == 0
    for name in ("vnc-xvfb", "vnc-xterm", "vnc-x11vnc", "rdp-xvfb", "rdp-xterm", "rdp-shadow"):
        status = _status(stack.pids[name])
        assert status["Uid"] == [str(demo.pw_uid)] * 4, name  # real, effective, saved, filesystem
        assert status["Gid"] == [str(demo.pw_gid)] * 4, name
        assert status["Groups"] == [], name  # root's supplementary groups are dropped too
        environ = Path(f"/proc/{stack.pids[name]}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(b"GUI_RECORDER_")], f"{name} got our settings"
    # The shell inside the VNC desktop's xterm: the demo account, in its home.
    shells = subprocess.run(["pgrep", "-P", str(stack.pids["vnc-xterm"])], capture_output=True,
                            text=True).stdout.split()
    assert shells, "the xterm runs no shell"
    for pid in map(int, shells):
        assert _status(pid)["Uid"][1] == str(demo.pw_uid)
        assert Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == home
    # The tests' own X clients (xdotool, screenshots) still reach the display as root.
    probe = subprocess.run(["xdotool", "getmouselocation"], env={**os.environ, "DISPLAY": stack.vnc.display},
                           capture_output=True, timeout=10)
    assert probe.returncode == 0, probe.stderr
