"""Session fixtures: the real stack (guacd, MinIO, RDP and VNC targets) started once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gui_recorder.stack import Stack, StackInfo

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> StackInfo:
    """Every real component, on free loopback ports, stopped by PID at the end."""
    with Stack(tmp_path_factory.mktemp("stack")) as running:
        yield running.info


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def minio_client(stack):
    from minio import Minio

    return Minio(stack.minio.endpoint, stack.minio.access_key, stack.minio.secret_key, secure=False)


def pytest_configure(config):
    # Chromium and X programs must never try to reach the (closed) network.
    os.environ.setdefault("NO_AT_BRIDGE", "1")
