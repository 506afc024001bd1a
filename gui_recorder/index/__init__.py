"""The search index of session text: typed lines and screen text, full-text searchable.

SQLite FTS5 by default (sqlite.py); PostgreSQL full-text search (postgres.py)
when the database URL is PostgreSQL. Both share the SQL of backend.py and sit
behind ``SearchBackend``.
"""

from gui_recorder.index.documents import (
    SessionMeta, SearchFilters, SearchHit, TextDocument, TimelineEntry, documents_from,
)
from gui_recorder.index.index import (
    SearchBackend, SearchIndex, search_api, search_command, session_text_api,
)
from gui_recorder.index.query import ParsedQuery, parse_query

__all__ = [
    "ParsedQuery", "SearchBackend", "SearchFilters", "SearchHit", "SearchIndex", "SessionMeta",
    "TextDocument", "TimelineEntry", "documents_from", "parse_query", "search_api", "search_command",
    "session_text_api",
]
