"""Typed errors for gui-recorder.

Every error a user can meet derives from ``GuiRecorderError`` and carries what
the user needs to act on it. One handler per edge (HTTP, WebSocket, CLI) turns
them into a status code, a close code or an exit code::

    GuiRecorderError
    ├── ConfigError            settings missing or invalid            (exit 2)
    ├── ProtocolError          malformed Guacamole data, with offset  (WS 1002 / HTTP 400)
    ├── GuacdError             guacd refused or ended a connection    (Guacamole status)
    │   └── GuacdUnreachable   no guacd at the configured address     (status 0x0207)
    ├── ComponentError         a stack component failed to start
    ├── StorageError           object store unreachable or refused    (HTTP 503)
    ├── RecordingError         the recording cannot be made durable   (session ends)
    ├── AuthError              bad credentials or token               (HTTP 401)
    │   └── ThrottledError     too many failed sign-ins, Retry-After  (HTTP 429)
    ├── PasswordPolicyError    a new password breaks the policy       (HTTP 422)
    ├── ForbiddenError         authenticated, not allowed             (HTTP 403)
    ├── NotFoundError          no such object                         (HTTP 404)
    ├── ConflictError          the object already exists              (HTTP 409)
    ├── DatabaseError          the database is unreachable or locked  (HTTP 503)
    ├── RenderError            a recording cannot be rendered
    ├── OcrError               the OCR engine (tesseract) failed or is missing
    └── SearchQueryError       a search query is empty or over the limits (HTTP 400)
"""

from __future__ import annotations


class GuiRecorderError(Exception):
    """Base of every error this project raises on purpose."""

    http_status = 500


class ConfigError(GuiRecorderError):
    http_status = 500


class ProtocolError(GuiRecorderError):
    """Malformed Guacamole protocol data.

    ``offset`` counts Unicode code points from the start of the stream fed to
    the parser, so the bad spot can be found in a recording.
    """

    http_status = 400

    def __init__(self, message: str, offset: int | None = None):
        self.offset = offset
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")


class GuacdError(GuiRecorderError):
    """guacd sent ``error`` or ended the connection during the handshake.

    ``status`` is the Guacamole protocol status code (e.g. 519 when the remote
    desktop rejected the credentials); see ``gui_recorder.guacd.status``.
    """

    http_status = 502

    def __init__(self, message: str, status: int):
        self.status = status
        super().__init__(f"{message} (Guacamole status {status})")


class GuacdUnreachable(GuacdError):
    def __init__(self, message: str):
        super().__init__(message, 0x0207)


class ComponentError(GuiRecorderError):
    """A component of the local stack (guacd, MinIO, a target) failed to start."""


class StorageError(GuiRecorderError):
    http_status = 503


class RecordingError(GuiRecorderError):
    """The recording could not be made durable; the session must end (fail closed)."""


class AuthError(GuiRecorderError):
    http_status = 401


class ThrottledError(AuthError):
    """Sign-in refused without checking the password: too many recent failures.

    ``retry_after`` (whole seconds) becomes the response's ``Retry-After``.
    """

    http_status = 429

    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


class PasswordPolicyError(GuiRecorderError):
    """A new password is too short, is the username or is a common one; the message says which."""

    http_status = 422


class ForbiddenError(GuiRecorderError):
    http_status = 403


class NotFoundError(GuiRecorderError):
    http_status = 404


class ConflictError(GuiRecorderError):
    http_status = 409


class DatabaseError(GuiRecorderError):
    """The database refused or could not be reached (translated from SQLAlchemy)."""

    http_status = 503


class RenderError(GuiRecorderError):
    pass


class OcrError(GuiRecorderError):
    """The OCR engine failed (translated from pytesseract at the adapter)."""


class SearchQueryError(GuiRecorderError):
    """A search query has no searchable term or exceeds the limits."""

    http_status = 400
