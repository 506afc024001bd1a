"""The SQL both search backends share: one documents table, written and read the same way.

``SqlBackend`` holds the insert, delete, timeline and hit-building code; a
backend subclass (sqlite.py, postgres.py) supplies the schema and the search
statement, and overrides a hook where its dialect differs:

- ``user_column``: ``user`` is a reserved word in PostgreSQL, so it is quoted there;
- ``_prepare_schema``: what must exist before the tables (PostgreSQL's text search configuration);
- ``_clean_text``: what the database cannot store (PostgreSQL refuses NUL in text);
- ``_delete_rows``: how a session's rows are removed (SQLite overwrites freed pages).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from gui_recorder.index.documents import (
    SearchFilters, SearchHit, SessionMeta, TextDocument, TimelineEntry, epoch_ms,
)
from gui_recorder.index.query import CJK, ParsedQuery, Term, compact_cjk

# Match markers inside the database; control characters cannot come from OCR or
# keys (keys.py never emits them), so they are safe to turn into <mark> after escaping.
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
# A query that runs longer than this is stopped (limits on external input): a
# prefix of one letter over millions of rows must not hold a reader for minutes.
QUERY_TIME_LIMIT_S = 5.0
# Matches ranked per query (the newest ones): ranking means scoring every match,
# so a common word over millions of documents would take seconds otherwise. Ids
# grow as sessions are indexed, so "newest" is also what auditors want.
RANK_CANDIDATES = 2000

_COLUMNS = ("session_id", "user", "connection", "protocol", "started_ms", "at_ms", "offset_ms", "source", "text",
            "x", "y", "w", "h", "confidence", "first_seen_ms", "last_seen_ms")


def snippet_html(raw: str) -> str:
    """A snippet with the database's match markers as ``<mark>``, everything else escaped."""
    return html.escape(raw).replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")


SNIPPET_CHARS = 160


def mark_substrings(value: str, needles: list[str]) -> str:
    """``value`` with each (case-insensitive) occurrence of the needles between the match markers,
    cut to about SNIPPET_CHARS around the first match."""
    lower = value.lower()
    spans = []
    for needle in filter(None, (n.lower() for n in needles)):
        start = lower.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = lower.find(needle, start + len(needle))
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    first = merged[0][0] if merged else 0
    lo = max(0, first - SNIPPET_CHARS // 3)
    hi = min(len(value), lo + SNIPPET_CHARS)
    out, pos = [], lo
    for start, end in merged:
        if start < lo or end > hi:
            continue
        out += [value[pos:start], MARK_OPEN, value[start:end], MARK_CLOSE]
        pos = end
    out.append(value[pos:hi])
    return ("…" if lo > 0 else "") + "".join(out) + ("…" if hi < len(value) else "")


def _bbox(row) -> tuple[int, int, int, int] | None:
    return None if row.x is None else (row.x, row.y, row.w, row.h)


class SqlBackend:
    """The shared part of a full-text backend over the ``text_documents`` table."""

    name: str
    schema: tuple[str, ...]
    user_column = "user"

    def __init__(self, engine: Engine):
        self.engine = engine

    # -- dialect hooks -------------------------------------------------------

    def _prepare_schema(self, conn: Connection) -> None:
        """Runs in the schema transaction before ``schema``."""

    def _clean_text(self, value: str) -> str:
        return value

    def _delete_rows(self, conn: Connection, session_id: str) -> int:
        return conn.execute(text("DELETE FROM text_documents WHERE session_id = :s"), {"s": session_id}).rowcount

    def search(self, query: ParsedQuery, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
        raise NotImplementedError

    def _term_clause(self, term: Term, name: str, params: dict) -> str:
        """A WHERE clause on documents ``d`` matching one term (CJK terms as substrings)."""
        raise NotImplementedError

    # -- CJK: substrings, not tokens ---------------------------------------------

    def _substring_search(self, conn: Connection, query: ParsedQuery, filters: SearchFilters, limit: int,
                          offset: int) -> list[SearchHit]:
        """A query with CJK terms: every term as its own clause (CJK ones through the backend's trigram
        index), newest first: word tokenizers cannot rank a substring (FTS5's unicode61 and 'simple' see a
        whole CJK run as one token), and the snippet is marked here."""
        params: dict = {"limit": limit, "offset": offset}
        where = [self._term_clause(term, f"t{i}", params) for i, term in enumerate(query.terms)]
        where += self._filter_clauses(filters, params)
        columns = ", ".join(f"d.{self.user_column} AS user_name" if c == "user" else f"d.{c}" for c in _COLUMNS)
        sql = (f"SELECT {columns} FROM text_documents d WHERE {' AND '.join(where)}"
               " ORDER BY d.id DESC LIMIT :limit OFFSET :offset")
        rows = conn.execute(text(sql), params).all()
        needles = [compact_cjk(t.text) if CJK.search(t.text) else t.text for t in query.terms]
        return [self._hit(r, user=r.user_name, snippet=mark_substrings(r.text, needles), score=0.0) for r in rows]

    @staticmethod
    def _like(term: Term) -> str:
        needle = compact_cjk(term.text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{needle}%"

    # -- shared --------------------------------------------------------------

    def ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            self._prepare_schema(conn)
            for statement in self.schema:
                conn.execute(text(statement))

    def replace_session(self, session: SessionMeta, documents: list[TextDocument]) -> int:
        started = epoch_ms(session.started_at)
        rows = [{
            "session_id": session.session_id, "user": session.user, "connection": session.connection,
            "protocol": session.protocol, "started_ms": started, "at_ms": started + d.offset_ms,
            "offset_ms": d.offset_ms, "source": d.source, "text": self._clean_text(d.text),
            "x": d.bbox[0] if d.bbox else None, "y": d.bbox[1] if d.bbox else None,
            "w": d.bbox[2] if d.bbox else None, "h": d.bbox[3] if d.bbox else None,
            "confidence": d.confidence, "first_seen_ms": d.first_seen_ms, "last_seen_ms": d.last_seen_ms,
        } for d in documents]
        columns = ", ".join(self.user_column if c == "user" else c for c in _COLUMNS)
        values = ", ".join(f":{c}" for c in _COLUMNS)
        with self.engine.begin() as conn:
            # One transaction: a search never sees the session half replaced.
            conn.execute(text("DELETE FROM text_documents WHERE session_id = :s"), {"s": session.session_id})
            if rows:
                conn.execute(text(f"INSERT INTO text_documents ({columns}) VALUES ({values})"), rows)
        return len(rows)

    def delete_session(self, session_id: str) -> int:
        with self.engine.begin() as conn:
            return self._delete_rows(conn, session_id)

    def session_text(self, session_id: str, limit: int) -> list[TimelineEntry]:
        sql = ("SELECT source, offset_ms, text, x, y, w, h, confidence, first_seen_ms, last_seen_ms"
               " FROM text_documents WHERE session_id = :s ORDER BY offset_ms, source, id LIMIT :limit")
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql), {"s": session_id, "limit": limit}).all()
        return [TimelineEntry(r.source, r.offset_ms, r.text, r.first_seen_ms, r.last_seen_ms, _bbox(r),
                              r.confidence) for r in rows]

    def has_session(self, session_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1 FROM text_documents WHERE session_id = :s LIMIT 1"),
                                {"s": session_id}).first() is not None

    # -- for the subclasses' search -------------------------------------------

    def _filter_clauses(self, filters: SearchFilters, params: dict) -> list[str]:
        """WHERE clauses (on documents aliased ``d``) for ``filters``; their values go into ``params``."""
        where = []
        for name in ("user", "connection", "protocol", "source"):
            value = getattr(filters, name)
            if value is not None:
                column = self.user_column if name == "user" else name
                where.append(f"d.{column} = :{name}")
                params[name] = value
        if filters.connections is not None:
            names = [f"scope{n}" for n in range(len(filters.connections))]
            where.append(f"d.connection IN ({', '.join(':' + n for n in names)})" if names else "1 = 0")
            params.update(zip(names, sorted(filters.connections)))
        if filters.since is not None:
            where.append("d.at_ms >= :since")
            params["since"] = epoch_ms(filters.since)
        if filters.until is not None:
            where.append("d.at_ms < :until")
            params["until"] = epoch_ms(filters.until)
        return where

    @staticmethod
    def _hit(row, *, user: str, snippet: str, score: float) -> SearchHit:
        """A hit from a documents row; ``snippet`` still carries the match markers."""
        return SearchHit(
            session_id=row.session_id, user=user, connection=row.connection, protocol=row.protocol,
            source=row.source, offset_ms=row.offset_ms, at=datetime.fromtimestamp(row.at_ms / 1000, UTC),
            text=row.text, snippet=snippet_html(snippet), bbox=_bbox(row), confidence=row.confidence,
            first_seen_ms=row.first_seen_ms, last_seen_ms=row.last_seen_ms, score=score,
        )
