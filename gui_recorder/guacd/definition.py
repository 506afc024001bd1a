"""What to connect to (the stored connection) and what the browser can show."""

from __future__ import annotations

from dataclasses import dataclass, field

from gui_recorder.vocabulary import PROTOCOLS


@dataclass(frozen=True)
class ConnectionDefinition:
    """A target as guacd needs it: the protocol and guacd's named parameters.

    ``parameters`` uses guacd's own names (hostname, port, username, password,
    security, ignore-cert, ...); anything guacd asks for that is absent is sent
    empty, which guacd treats as its default.
    """

    protocol: str
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")


@dataclass(frozen=True)
class ClientInfo:
    """The browser's display, sent to guacd during the handshake."""

    width: int = 1024
    height: int = 768
    dpi: int = 96
    audio: tuple[str, ...] = ()
    video: tuple[str, ...] = ()
    image: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")
    timezone: str = "UTC"
    name: str = "gui-recorder"
