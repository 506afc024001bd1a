"""The search index: what the text worker, the API and the CLI call.

``SearchIndex`` picks a backend from the database URL (a dispatch table, so a
PostgreSQL full-text backend slots in beside SQLite FTS5), validates and
limits everything that comes from users, and translates SQLAlchemy errors into
``DatabaseError`` at this edge.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from gui_recorder.errors import ConfigError, DatabaseError, GuiRecorderError, SearchQueryError
from gui_recorder.index.documents import (
    SOURCES, ScreenText, SearchFilters, SearchHit, SessionMeta, TextDocument, TimelineEntry, TypedLine,
    documents_from,
)
from gui_recorder.index.query import ParsedQuery, parse_query
from gui_recorder.index.postgres import PostgresBackend
from gui_recorder.index.sqlite import SqliteBackend
from gui_recorder.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000
MAX_TIMELINE = 100_000
MAX_DOCUMENT_CHARS = 10_000  # one OCR block or typed line; longer text is cut


class SearchBackend(Protocol):
    """What a full-text backend provides (see sqlite.py for the reference one)."""

    name: str

    def ensure_schema(self) -> None: ...
    def replace_session(self, session: SessionMeta, documents: list[TextDocument]) -> int: ...
    def delete_session(self, session_id: str) -> int: ...
    def search(self, query: ParsedQuery, filters: SearchFilters, limit: int,
               offset: int = 0) -> list[SearchHit]: ...
    def session_text(self, session_id: str, limit: int) -> list[TimelineEntry]: ...
    def has_session(self, session_id: str) -> bool: ...


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: auditors' searches never block the text worker's writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


# dialect name -> backend factory.
BACKENDS = {
    "sqlite": SqliteBackend,
    "postgresql": PostgresBackend,
}


def backend_for(dialect: str):
    """The backend factory for a SQLAlchemy dialect name; ``ConfigError`` if there is none."""
    factory = BACKENDS.get(dialect)
    if factory is None:
        raise ConfigError(f"no search backend for the '{dialect}' database")
    return factory


def create_index_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class SearchIndex:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.backend: SearchBackend = backend_for(engine.dialect.name)(engine)
        self._call(self.backend.ensure_schema)

    @classmethod
    def from_settings(cls, settings: Settings) -> "SearchIndex":
        url = settings.resolved_database_url
        if url.startswith("sqlite:///") and ":memory:" not in url:
            settings.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(create_index_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "SearchIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ------------------------------------------------------------

    def index_session(self, session: SessionMeta, typed: list[TypedLine],
                      screen: list[ScreenText], printed: list[TypedLine] = (), events: list = ()) -> int:
        """Replace every document of ``session`` (idempotent: re-indexing never duplicates).

        ``printed``: an SSH terminal's lines (same fields as typed lines); ``events``: clipboard copies
        and file transfers (``documents.Event``). Returns the number of documents stored.
        """
        docs = [_cut(d) for d in documents_from(typed, screen, printed, events)]
        return self._call(self.backend.replace_session, session, docs)

    def delete_session(self, session_id: str) -> int:
        """Remove every document (typed and screen) of the session; returns how many there were."""
        return self._call(self.backend.delete_session, session_id)

    # -- reading ------------------------------------------------------------

    def search(self, query: str, *, user: str | None = None, connection: str | None = None,
               protocol: str | None = None, since: datetime | None = None, until: datetime | None = None,
               source: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0,
               connections: frozenset[str] | None = None) -> list[SearchHit]:
        """Ranked hits (best first) for the user's ``query``; see query.py for the syntax.

        Raises ``SearchQueryError`` (HTTP 400) for bad input, ``DatabaseError`` (503).
        """
        parsed = parse_query(query)
        if source is not None and source not in SOURCES:
            raise SearchQueryError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise SearchQueryError(f"limit must be between 1 and {MAX_LIMIT}")
        if not 0 <= offset <= MAX_OFFSET:
            raise SearchQueryError(f"offset must be between 0 and {MAX_OFFSET}")
        if since is not None and until is not None and until <= since:
            raise SearchQueryError("'until' must be later than 'since'")
        if connections is not None and not connections:
            return []  # a scope with no connection in it: nothing to search
        filters = SearchFilters(user, connection, protocol, source, since, until, connections)
        return self._call(self.backend.search, parsed, filters, limit, offset)

    def session_text(self, session_id: str, limit: int = MAX_TIMELINE) -> list[TimelineEntry]:
        """The session's timeline, typed and screen text, sorted by offset."""
        return self._call(self.backend.session_text, session_id, min(max(limit, 1), MAX_TIMELINE))

    def has_session(self, session_id: str) -> bool:
        return self._call(self.backend.has_session, session_id)

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except GuiRecorderError:
            raise
        except SQLAlchemyError as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            detail = getattr(exc, "orig", None) or exc
            raise DatabaseError(f"search index error at {where}: {detail}") from exc


def _cut(doc: TextDocument) -> TextDocument:
    if len(doc.text) <= MAX_DOCUMENT_CHARS:
        return doc
    return TextDocument(doc.source, doc.text[:MAX_DOCUMENT_CHARS], doc.offset_ms, doc.first_seen_ms,
                        doc.last_seen_ms, doc.bbox, doc.confidence)


# -- what the API and the CLI call ------------------------------------------


def search_api(index: SearchIndex, q: str, **filters) -> dict:
    """Body of ``GET /api/search``: ``{"query", "count", "results": [hit...]}``."""
    hits = index.search(q, **filters)
    return {"query": q, "count": len(hits), "results": [h.to_dict() for h in hits]}


def session_text_api(index: SearchIndex, session_id: str) -> dict:
    """Body of ``GET /api/sessions/{id}/text``: the timeline sorted by offset."""
    entries = index.session_text(session_id)
    return {"session_id": session_id, "count": len(entries), "entries": [e.to_dict() for e in entries]}


def _format_offset(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def search_command(settings: Settings, query: str, user: str | None = None, connection: str | None = None,
                   since: datetime | None = None, until: datetime | None = None, source: str | None = None,
                   as_json: bool = False, limit: int = DEFAULT_LIMIT) -> str:
    """What ``gui-recorder search`` prints: a table of hits, or JSON with ``as_json``.

    In the text form matches are shown as ``[[word]]`` (the snippet's
    ``<mark>`` tags, unescaped for a terminal).
    """
    with SearchIndex.from_settings(settings) as index:
        hits = index.search(query, user=user, connection=connection, since=since, until=until,
                            source=source, limit=limit)
    if as_json:
        return json.dumps({"query": query, "count": len(hits), "results": [h.to_dict() for h in hits]},
                          indent=2, ensure_ascii=False)
    if not hits:
        return "no matches"
    import html
    lines = []
    for hit in hits:
        snippet = html.unescape(hit.snippet.replace("<mark>", "[[").replace("</mark>", "]]"))
        lines.append(f"{hit.at:%Y-%m-%d %H:%M:%S}  {hit.session_id}  +{_format_offset(hit.offset_ms)}  "
                     f"{hit.user}@{hit.connection}  {hit.source:<6}  {' '.join(snippet.split())}")
    return "\n".join(lines)
