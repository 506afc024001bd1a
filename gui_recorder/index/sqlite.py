"""The SQLite FTS5 search backend (the default).

Documents live in an ordinary table (indexed by session and by moment) and
an external-content FTS5 table indexes their text; triggers keep the two in
step, so replacing a session is a DELETE and INSERTs in one transaction.
Ranking is FTS5's bm25. Raw SQL: SQLAlchemy has no FTS5 constructs.
"""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from gui_recorder.errors import DatabaseError
from gui_recorder.index.documents import (
    SearchFilters, SearchHit, SessionMeta, TextDocument, TimelineEntry, epoch_ms, utc,
)
from gui_recorder.index.query import ParsedQuery

# Match markers inside SQLite; control characters cannot come from OCR or keys
# (keys.py never emits them), so they are safe to turn into <mark> after escaping.
_OPEN, _CLOSE = "\x02", "\x03"
SNIPPET_TOKENS = 16
# A query that runs longer than this is stopped (limits on external input): a
# prefix of one letter over millions of rows must not hold a reader for minutes.
QUERY_TIME_LIMIT_S = 5.0
# Matches ranked per query (the newest ones); see SqliteBackend.search.
RANK_CANDIDATES = 2000

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS text_documents (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        user TEXT NOT NULL,
        connection TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        offset_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        text TEXT NOT NULL,
        x INTEGER, y INTEGER, w INTEGER, h INTEGER,
        confidence REAL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS text_documents_session ON text_documents (session_id, offset_ms)",
    "CREATE INDEX IF NOT EXISTS text_documents_at ON text_documents (at_ms)",
    # remove_diacritics 2: 'resume' finds 'résumé'. Prefix indexes make the
    # short prefix queries auditors type (``pass*``) cheap.
    """CREATE VIRTUAL TABLE IF NOT EXISTS text_fts USING fts5(
        text, content='text_documents', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3 4'
    )""",
    """CREATE TRIGGER IF NOT EXISTS text_documents_ai AFTER INSERT ON text_documents BEGIN
        INSERT INTO text_fts(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS text_documents_ad AFTER DELETE ON text_documents BEGIN
        INSERT INTO text_fts(text_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
]

_FILTER_COLUMNS = {"user": "d.user", "connection": "d.connection", "protocol": "d.protocol",
                   "source": "d.source"}


def _snippet_html(raw: str) -> str:
    return html.escape(raw).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")


def _bbox(row) -> tuple[int, int, int, int] | None:
    return None if row.x is None else (row.x, row.y, row.w, row.h)


class SqliteBackend:
    name = "sqlite"

    def __init__(self, engine: Engine):
        self.engine = engine

    def ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            for statement in SCHEMA:
                conn.execute(text(statement))

    def replace_session(self, session: SessionMeta, documents: list[TextDocument]) -> int:
        started = epoch_ms(session.started_at)
        rows = [{
            "session_id": session.session_id, "user": session.user, "connection": session.connection,
            "protocol": session.protocol, "started_ms": started, "at_ms": started + d.offset_ms,
            "offset_ms": d.offset_ms, "source": d.source, "text": d.text,
            "x": d.bbox[0] if d.bbox else None, "y": d.bbox[1] if d.bbox else None,
            "w": d.bbox[2] if d.bbox else None, "h": d.bbox[3] if d.bbox else None,
            "confidence": d.confidence, "first_seen_ms": d.first_seen_ms, "last_seen_ms": d.last_seen_ms,
        } for d in documents]
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM text_documents WHERE session_id = :s"), {"s": session.session_id})
            if rows:
                conn.execute(text(
                    "INSERT INTO text_documents (session_id, user, connection, protocol, started_ms, at_ms,"
                    " offset_ms, source, text, x, y, w, h, confidence, first_seen_ms, last_seen_ms)"
                    " VALUES (:session_id, :user, :connection, :protocol, :started_ms, :at_ms, :offset_ms,"
                    " :source, :text, :x, :y, :w, :h, :confidence, :first_seen_ms, :last_seen_ms)"), rows)
        return len(rows)

    def delete_session(self, session_id: str) -> int:
        with self.engine.begin() as conn:
            # Forgetting (issue 10): freed cells and pages are overwritten, so the text does not
            # linger in the database file. FTS5 drops the words from its index via the trigger.
            previous = conn.execute(text("PRAGMA secure_delete")).scalar()
            conn.execute(text("PRAGMA secure_delete = ON"))
            try:
                return conn.execute(text("DELETE FROM text_documents WHERE session_id = :s"),
                                    {"s": session_id}).rowcount
            finally:
                conn.execute(text(f"PRAGMA secure_delete = {int(previous or 0)}"))

    def search(self, query: ParsedQuery, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
        where = ["text_fts MATCH :match"]
        params: dict = {"match": query.to_fts5(), "limit": limit, "offset": offset,
                        "open": _OPEN, "close": _CLOSE, "tokens": SNIPPET_TOKENS}
        for name, column in _FILTER_COLUMNS.items():
            value = getattr(filters, name)
            if value is not None:
                where.append(f"{column} = :{name}")
                params[name] = value
        if filters.since is not None:
            where.append("d.at_ms >= :since")
            params["since"] = epoch_ms(filters.since)
        if filters.until is not None:
            where.append("d.at_ms < :until")
            params["until"] = epoch_ms(filters.until)
        params["candidates"] = RANK_CANDIDATES
        # Step 1: rank the newest RANK_CANDIDATES matches by bm25. FTS5 walks a
        # term's rowids in order cheaply, but ranking means scoring every match:
        # a common word over millions of documents would take seconds. Rowids
        # grow as sessions are indexed, so "newest" is also what auditors want.
        ranked_sql = (
            "SELECT id, score FROM ("
            " SELECT d.id AS id, bm25(text_fts) AS score"
            " FROM text_fts JOIN text_documents d ON d.id = text_fts.rowid"
            f" WHERE {' AND '.join(where)} ORDER BY text_fts.rowid DESC LIMIT :candidates"
            ") ORDER BY score, id DESC LIMIT :limit OFFSET :offset"
        )
        # Step 2: rows and snippets of the page only (snippet is the costly part).
        rows_sql = (
            "SELECT d.id, d.session_id, d.user, d.connection, d.protocol, d.source, d.offset_ms, d.at_ms,"
            " d.text, d.x, d.y, d.w, d.h, d.confidence, d.first_seen_ms, d.last_seen_ms,"
            " snippet(text_fts, 0, :open, :close, '…', :tokens) AS snippet"
            " FROM text_fts JOIN text_documents d ON d.id = text_fts.rowid"
            " WHERE text_fts MATCH :match AND text_fts.rowid IN ({ids})"
        )

        def run():
            with self.engine.connect() as conn:
                def query():
                    ranked = conn.execute(text(ranked_sql), params).all()
                    if not ranked:
                        return ranked, {}
                    ids = ",".join(str(int(r.id)) for r in ranked)
                    rows = conn.execute(text(rows_sql.format(ids=ids)), params).all()
                    return ranked, {r.id: r for r in rows}
                return self._with_deadline(conn, query)

        ranked, rows = run()
        hits = []
        for rank in ranked:
            r = rows.get(rank.id)
            if r is None:
                continue
            hits.append(SearchHit(
                session_id=r.session_id, user=r.user, connection=r.connection, protocol=r.protocol,
                source=r.source, offset_ms=r.offset_ms, at=datetime.fromtimestamp(r.at_ms / 1000, UTC),
                text=r.text, snippet=_snippet_html(r.snippet), bbox=_bbox(r), confidence=r.confidence,
                first_seen_ms=r.first_seen_ms, last_seen_ms=r.last_seen_ms, score=float(rank.score),
            ))
        return hits

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

    @staticmethod
    def _with_deadline(conn, run):
        raw = conn.connection.dbapi_connection
        deadline = time.monotonic() + QUERY_TIME_LIMIT_S
        # A non-zero return from the progress handler interrupts the statement.
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 20000)
        try:
            return run()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise DatabaseError(f"the search took longer than {QUERY_TIME_LIMIT_S:.0f} s and was stopped") from exc
            raise
        finally:
            raw.set_progress_handler(None, 0)


__all__ = ["SqliteBackend", "utc"]
