"""Guacamole protocol status codes (guacamole/protocol-types.h) and what they mean to a user."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    SUCCESS = 0x0000
    UNSUPPORTED = 0x0100
    SERVER_ERROR = 0x0200
    SERVER_BUSY = 0x0201
    UPSTREAM_TIMEOUT = 0x0202
    UPSTREAM_ERROR = 0x0203
    RESOURCE_NOT_FOUND = 0x0204
    RESOURCE_CONFLICT = 0x0205
    RESOURCE_CLOSED = 0x0206
    UPSTREAM_NOT_FOUND = 0x0207
    UPSTREAM_UNAVAILABLE = 0x0208
    SESSION_CONFLICT = 0x0209
    SESSION_TIMEOUT = 0x020A
    SESSION_CLOSED = 0x020B
    CLIENT_BAD_REQUEST = 0x0300
    CLIENT_UNAUTHORIZED = 0x0301
    CLIENT_FORBIDDEN = 0x0303
    CLIENT_TIMEOUT = 0x0308
    CLIENT_OVERRUN = 0x030D
    CLIENT_BAD_TYPE = 0x030F
    CLIENT_TOO_MANY = 0x031D


MESSAGES = {
    Status.UPSTREAM_TIMEOUT: "The remote desktop did not answer in time.",
    Status.UPSTREAM_ERROR: "The remote desktop reported an error.",
    # guacd 1.3 reports RDP authentication failures as 519 (UPSTREAM_NOT_FOUND) too.
    Status.UPSTREAM_NOT_FOUND: "The remote desktop cannot be reached or rejected the credentials.",
    Status.UPSTREAM_UNAVAILABLE: "The remote desktop is unavailable or refused the connection.",
    Status.SESSION_CONFLICT: "The session was ended because it conflicts with another session.",
    Status.SESSION_TIMEOUT: "The session was ended for inactivity.",
    Status.SESSION_CLOSED: "The session was ended by an administrator.",
    Status.CLIENT_BAD_REQUEST: "The gateway refused a malformed or forbidden instruction.",
    Status.CLIENT_UNAUTHORIZED: "Access denied: the login or the session token is not valid.",
    Status.CLIENT_FORBIDDEN: "You are not allowed to open this connection.",
    Status.CLIENT_TIMEOUT: "The browser stopped responding.",
    Status.SERVER_ERROR: "The gateway or guacd failed internally.",
}


# The WebSocket close code for each status, as Guacamole's own tunnel endpoint sends it
# (guacamole-common GuacamoleStatus.getWebSocketCode); the Guacamole status itself goes
# in the close reason, which is what guacamole-common-js reads.
WEBSOCKET_CODES = {
    Status.SUCCESS: 1000, Status.UNSUPPORTED: 1011, Status.SERVER_ERROR: 1011, Status.SERVER_BUSY: 1008,
    Status.UPSTREAM_TIMEOUT: 1011, Status.UPSTREAM_ERROR: 1011, Status.RESOURCE_NOT_FOUND: 1002,
    Status.RESOURCE_CONFLICT: 1008, Status.RESOURCE_CLOSED: 1002, Status.UPSTREAM_NOT_FOUND: 1011,
    Status.UPSTREAM_UNAVAILABLE: 1011, Status.SESSION_CONFLICT: 1008, Status.SESSION_TIMEOUT: 1002,
    Status.SESSION_CLOSED: 1002, Status.CLIENT_BAD_REQUEST: 1002, Status.CLIENT_UNAUTHORIZED: 1008,
    Status.CLIENT_FORBIDDEN: 1008, Status.CLIENT_TIMEOUT: 1002, Status.CLIENT_OVERRUN: 1009,
    Status.CLIENT_BAD_TYPE: 1003, Status.CLIENT_TOO_MANY: 1008,
}


def websocket_close_code(code: int) -> int:
    """The WebSocket close code that goes with a Guacamole status (1011 for one we do not know)."""
    try:
        return WEBSOCKET_CODES[Status(code)]
    except ValueError:
        return 1011


def describe(code: int) -> str:
    return MESSAGES.get(code, f"Guacamole status {code}")
