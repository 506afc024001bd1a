"""What the operators see of a running process (issue 18): OpenTelemetry traces (``traces``, off unless
an OTLP endpoint is set), structured logs (``logs``: one JSON line per event, or plain text for people),
and the context both carry (``context``: the session and request ids, in contextvars, so no call site
passes them). ``asgi``: the middleware that opens a request's span and request id. Imports only the
foundations."""

from gui_recorder.telemetry.context import bind, current_request_id, current_session_id
from gui_recorder.telemetry.traces import span

__all__ = ["bind", "current_request_id", "current_session_id", "span"]
