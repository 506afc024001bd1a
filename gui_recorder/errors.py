"""Typed errors for gui-recorder, and what each edge makes of them.

Every error a user can meet derives from ``GuiRecorderError`` and carries what
the user needs to act on it. Each class carries its HTTP status, its Guacamole
status (what a browser's tunnel is closed with: the status in the close reason
and the ``error`` instruction, the WebSocket close code derived from it as
Guacamole's own tunnel endpoint does) and its CLI exit code. One handler per
edge renders them: HTTP (``gateway/edge.py``: ``{"error", "detail"}``, the same
body shape for validation errors), WebSocket (``gateway/tunnel.refuse``) and the
CLI (``cli.main``)::

    class                      meaning                                   HTTP  Guacamole        WS    exit
    GuiRecorderError           base                                      500   0x0200 SERVER    1011  2
    ├── ConfigError            settings missing or invalid               500   0x0200           1011  2
    ├── ProtocolError          malformed Guacamole data, with offset     400   0x0300 BAD_REQ   1002  2
    ├── GuacdError             guacd refused or ended a connection       502   its own status   ..    2
    │   └── GuacdUnreachable   no guacd at the configured address        502   0x0207           1011  2
    │       └── GuacdUntrusted  its TLS certificate does not verify      502   0x0207           1011  2
    ├── HostKeyError           SSH host key changed or cannot be pinned  502   0x0203 UPSTREAM  1011  2
    ├── ComponentError         a stack component failed to start         500   0x0200           1011  3
    ├── StorageError           object store unreachable or refused       503   0x0201 BUSY      1008  3
    ├── RecordingError         the recording cannot be made durable      503   0x0200           1011  3
    ├── AuthError              bad credentials or token                  401   0x0301 UNAUTH    1008  2
    │   └── ThrottledError     too many failed sign-ins, Retry-After     429   0x031D TOO_MANY  1008  2
    ├── PasswordPolicyError    a new password breaks the policy          422   0x0300           1002  2
    ├── AccountError           an account, group, grant or tag invalid   422   0x0300           1002  2
    ├── ForbiddenError         authenticated, not allowed                403   0x0303 FORBIDDEN 1008  2
    ├── NotFoundError          no such object                            404   0x0204 NOT_FOUND 1002  2
    ├── ConflictError          the object exists / is busy               409   0x0205 CONFLICT  1008  2
    ├── DatabaseError          the database is unreachable or locked     503   0x0201           1008  3
    ├── IdentityProviderError  the directory or SSO provider failed      503   0x0201           1008  3
    ├── RenderError            a recording cannot be rendered            500   0x0200           1011  2
    ├── OcrError               the OCR engine (tesseract) failed         500   0x0200           1011  3
    ├── SearchQueryError       a search query is empty or over limits    400   0x0300           1002  2
    ├── SealingError           a sealed recording cannot be opened       500   0x0200           1011  2
    │   ├── KeyUnavailableError  a key (named by id) is not available    503   0x0201 BUSY      1008  3
    │   └── TamperedError      a sealed recording failed its checks      500   0x0200           1011  4
    └── PolicyRuleError        a guardrail rule is invalid or unsafe     422   0x0300           1002  2

Exit code 2: fix the input or the settings; 3: a component is down, retry later; 4: evidence failed its
integrity checks (``gui-recorder verify``).
"""

from __future__ import annotations


class GuiRecorderError(Exception):
    """Base of every error this project raises on purpose."""

    http_status = 500
    # Guacamole protocol status (guacd.status.Status; plain ints here: errors import nothing).
    guacamole_status = 0x0200
    exit_code = 2


class ConfigError(GuiRecorderError):
    http_status = 500


class ProtocolError(GuiRecorderError):
    """Malformed Guacamole protocol data.

    ``offset`` counts Unicode code points from the start of the stream fed to
    the parser, so the bad spot can be found in a recording.
    """

    guacamole_status = 0x0300
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
    guacamole_status = 0x0203  # until guacd has said which

    def __init__(self, message: str, status: int):
        self.status = status
        self.reason = message  # without the status, to quote inside another message
        self.guacamole_status = status  # guacd's own verdict is what the browser is told
        super().__init__(f"{message} (Guacamole status {status})")


class GuacdUnreachable(GuacdError):
    guacamole_status = 0x0207

    def __init__(self, message: str):
        super().__init__(message, 0x0207)


class GuacdUntrusted(GuacdUnreachable):
    """guacd answered TLS with a certificate that does not verify (wrong CA, name or expired): the
    gateway sends it nothing, credentials least of all; a pool passes over it like a dead one."""


class HostKeyError(GuiRecorderError):
    """An SSH server's host key is not the one pinned at first use (or none could be read to pin).

    The message names both fingerprints and what an admin does if the change was intended.
    """

    http_status = 502
    guacamole_status = 0x0203


class ComponentError(GuiRecorderError):
    """A component of the local stack (guacd, MinIO, a target) failed to start."""

    exit_code = 3


class StorageError(GuiRecorderError):
    exit_code = 3
    guacamole_status = 0x0201
    http_status = 503


class RecordingError(GuiRecorderError):
    """The recording could not be made durable; the session must end (fail closed)."""

    exit_code = 3
    http_status = 503


class AuthError(GuiRecorderError):
    guacamole_status = 0x0301
    http_status = 401


class ThrottledError(AuthError):
    """Sign-in refused without checking the password: too many recent failures.

    ``retry_after`` (whole seconds) becomes the response's ``Retry-After``.
    """

    guacamole_status = 0x031D
    http_status = 429

    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


class PasswordPolicyError(GuiRecorderError):
    """A new password is too short, is the username or is a common one; the message says which."""

    guacamole_status = 0x0300
    http_status = 422


class AccountError(GuiRecorderError):
    """A user, group, grant or tag an admin (or the CLI) gives is not valid; the message says what is wrong."""

    guacamole_status = 0x0300
    http_status = 422


class ForbiddenError(GuiRecorderError):
    guacamole_status = 0x0303
    http_status = 403


class NotFoundError(GuiRecorderError):
    guacamole_status = 0x0204
    http_status = 404


class ConflictError(GuiRecorderError):
    guacamole_status = 0x0205
    http_status = 409


class DatabaseError(GuiRecorderError):
    """The database refused or could not be reached (translated from SQLAlchemy)."""

    exit_code = 3
    guacamole_status = 0x0201
    http_status = 503


class IdentityProviderError(GuiRecorderError):
    """The LDAP directory or the OpenID Connect provider is unreachable or answered nonsense: the
    user's credentials were not judged, so this is no failed sign-in (retry later)."""

    guacamole_status = 0x0201
    exit_code = 3
    http_status = 503


class RenderError(GuiRecorderError):
    pass


class OcrError(GuiRecorderError):
    """The OCR engine failed (translated from pytesseract at the adapter)."""

    exit_code = 3


class SearchQueryError(GuiRecorderError):
    """A search query has no searchable term or exceeds the limits."""

    guacamole_status = 0x0300
    http_status = 400


class SealingError(GuiRecorderError):
    """A sealed recording (issue 13) cannot be opened or checked."""


class KeyUnavailableError(SealingError):
    """A key-encryption or signing key is not available: ``key_id`` names it, so an operator can restore it."""

    http_status = 503
    guacamole_status = 0x0201
    exit_code = 3

    def __init__(self, message: str, key_id: str):
        self.key_id = key_id
        super().__init__(f"{message} (key id {key_id})")


class TamperedError(SealingError):
    """A sealed recording failed its checks: ``segment`` is the first bad one (None: the whole)."""

    exit_code = 4

    def __init__(self, message: str, session_id: str | None = None, segment: int | None = None):
        self.session_id = session_id
        self.segment = segment
        super().__init__(message)


class PolicyRuleError(GuiRecorderError):
    """A guardrail rule cannot be saved: a bad regex, one too long or too slow, a block rule on screen text."""

    guacamole_status = 0x0300
    http_status = 422
