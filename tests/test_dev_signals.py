"""How `gui-recorder dev` takes SIGTERM and SIGINT: real signals to this process.

A SIGTERM that arrived while the gateway started was raised as KeyboardInterrupt inside a
weakref callback, printed and dropped, and the stack ran on; a second signal during the stop
could leave components behind. The end-to-end stop is test_dev's.
"""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from gui_recorder.cli import _DevShutdown


@pytest.fixture
def shutdown():
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield _DevShutdown()
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_stack_starts_interrupts_the_start(shutdown, sig):
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), sig)
        signal.sigtimedwait([], 0)  # a bytecode boundary for the handler, whatever the platform
    assert shutdown.requested


def test_once_the_server_exists_a_signal_asks_it_to_stop_and_raises_nothing(shutdown):
    shutdown.server = SimpleNamespace(should_exit=False)
    os.kill(os.getpid(), signal.SIGTERM)
    signal.sigtimedwait([], 0)
    assert shutdown.server.should_exit and shutdown.requested


def test_while_the_stack_stops_a_second_signal_changes_nothing(shutdown):
    shutdown.stopping = True
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    signal.sigtimedwait([], 0)
    assert shutdown.requested  # noted, and nothing raised: the stop goes on
