"""The session and request a piece of work belongs to, carried by contextvars.

asyncio tasks and ``asyncio.to_thread`` copy the context, so a session id bound once in the
tunnel (or a request id in the middleware) is on every log line and span below it, without a
parameter through six modules other people are editing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

session_id: ContextVar[str | None] = ContextVar("gr_session_id", default=None)
request_id: ContextVar[str | None] = ContextVar("gr_request_id", default=None)


def current_session_id() -> str | None:
    return session_id.get()


def current_request_id() -> str | None:
    return request_id.get()


def bind(*, session: str | None = None, request: str | None = None) -> None:
    """For the rest of the current task (or thread's context): this session / request."""
    if session is not None:
        session_id.set(session)
    if request is not None:
        request_id.set(request)


@contextmanager
def bound(*, session: str | None = None, request: str | None = None) -> Iterator[None]:
    """The same for a block only (a worker's job): restored afterwards."""
    tokens = []
    if session is not None:
        tokens.append((session_id, session_id.set(session)))
    if request is not None:
        tokens.append((request_id, request_id.set(request)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
