"""Talking to guacd: connection definitions, the handshake and status codes."""

from gui_recorder.guacd.client import GuacdConnection, open_guacd
from gui_recorder.guacd.definition import ClientInfo, ConnectionDefinition

__all__ = ["ClientInfo", "ConnectionDefinition", "GuacdConnection", "open_guacd"]
