"""The records of the search index: sessions, documents, filters, hits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

# typed: keys; screen: OCR; terminal: what an SSH terminal printed (its typescript, no OCR).
# clipboard: text copied into or out of the session; file: a file uploaded or downloaded (text/transfers.py).
SOURCES = ("typed", "screen", "terminal", "clipboard", "file")

# Where the web UI fetches the frame of a hit (the API serves it).
THUMBNAIL_URL = "/api/sessions/{session_id}/thumbnails?t={offset_ms}"


def utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the database stores UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_ms(moment: datetime) -> int:
    return int(utc(moment).timestamp() * 1000)


@dataclass(frozen=True)
class SessionMeta:
    """What a session's documents are filtered by; ``started_at`` is wall-clock (UTC)."""

    session_id: str
    user: str
    connection: str
    protocol: str
    started_at: datetime


class TypedLine(Protocol):
    """What the index needs of a typed line (the text stage's ``TypedLine`` is one).

    Described here rather than imported: the index sits below the text stage
    and takes whatever has these fields.
    """

    text: str
    start_ms: int
    end_ms: int


class ScreenText(Protocol):
    """What the index needs of a piece of screen text (the text stage's ``ScreenText`` is one)."""

    text: str
    confidence: float
    first_ms: int
    last_ms: int

    @property
    def bbox(self) -> tuple[int, int, int, int]: ...


@dataclass(frozen=True)
class TextDocument:
    """One searchable piece of text at a moment of a session."""

    source: str  # one of SOURCES
    text: str
    offset_ms: int  # the moment a hit jumps to: when the text began / first appeared
    first_seen_ms: int
    last_seen_ms: int
    bbox: tuple[int, int, int, int] | None = None  # x, y, w, h on screen ('screen' only)
    confidence: float | None = None

    @classmethod
    def typed(cls, line: TypedLine) -> "TextDocument":
        return cls("typed", line.text, line.start_ms, line.start_ms, line.end_ms)

    @classmethod
    def printed(cls, line: TypedLine) -> "TextDocument":
        """A line an SSH terminal printed (same fields as a typed line)."""
        return cls("terminal", line.text, line.start_ms, line.start_ms, line.end_ms)

    @classmethod
    def event(cls, item: "Event") -> "TextDocument":
        """A clipboard copy or a file transfer: its details are in its text (searchable, shown as is)."""
        return cls(item.source, item.text, item.start_ms, item.start_ms, item.end_ms)

    @classmethod
    def screen(cls, item: ScreenText) -> "TextDocument":
        return cls("screen", item.text, item.first_ms, item.first_ms, item.last_ms,
                   item.bbox, round(float(item.confidence), 1))


class Event(Protocol):
    """What the index needs of a clipboard copy or file transfer (the text stage's ``Transfer`` is one)."""

    source: str
    text: str
    start_ms: int
    end_ms: int


def documents_from(typed: list[TypedLine], screen: list[ScreenText],
                   printed: list[TypedLine] = (), events: list[Event] = ()) -> list[TextDocument]:
    docs = [TextDocument.typed(line) for line in typed if line.text.strip()]
    docs += [TextDocument.event(item) for item in events]
    docs += [TextDocument.printed(line) for line in printed if line.text.strip()]
    docs += [TextDocument.screen(item) for item in screen if item.text.strip()]
    docs.sort(key=lambda d: (d.offset_ms, d.source))
    return docs


@dataclass(frozen=True)
class SearchFilters:
    user: str | None = None
    connection: str | None = None
    protocol: str | None = None
    source: str | None = None
    since: datetime | None = None  # wall-clock time of the moment, inclusive
    until: datetime | None = None  # exclusive
    connections: frozenset[str] | None = None  # only these connections (a scoped auditor); None: all


@dataclass(frozen=True)
class SearchHit:
    """One ranked result.

    ``snippet`` is HTML: the document text HTML-escaped, each match wrapped in
    ``<mark>``...``</mark>``, long texts cut with an ellipsis. ``text`` is the
    plain full text.
    """

    session_id: str
    user: str
    connection: str
    protocol: str
    source: str
    offset_ms: int
    at: datetime  # wall-clock time of the moment
    text: str
    snippet: str
    bbox: tuple[int, int, int, int] | None
    confidence: float | None
    first_seen_ms: int
    last_seen_ms: int
    score: float  # the backend's relevance, lower is better (SQLite bm25; -ts_rank_cd on PostgreSQL)

    @property
    def thumbnail_url(self) -> str:
        return THUMBNAIL_URL.format(session_id=self.session_id, offset_ms=self.offset_ms)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        out["bbox"] = list(self.bbox) if self.bbox else None
        out["thumbnail_url"] = self.thumbnail_url
        return out


@dataclass(frozen=True)
class TimelineEntry:
    """A document of one session, for ``GET /api/sessions/{id}/text``."""

    source: str
    offset_ms: int
    text: str
    first_seen_ms: int
    last_seen_ms: int
    bbox: tuple[int, int, int, int] | None
    confidence: float | None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bbox"] = list(self.bbox) if self.bbox else None
        return out
