"""The SQLite FTS5 search backend (the default).

Documents live in an ordinary table (indexed by session and by moment) and
an external-content FTS5 table indexes their text; triggers keep the two in
step, so replacing a session is a DELETE and INSERTs in one transaction
(backend.py, shared with PostgreSQL). Ranking is FTS5's bm25. Raw SQL:
SQLAlchemy has no FTS5 constructs.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, text

from gui_recorder.errors import DatabaseError
from gui_recorder.index.backend import MARK_CLOSE, MARK_OPEN, QUERY_TIME_LIMIT_S, RANK_CANDIDATES, SqlBackend
from gui_recorder.index.documents import SearchFilters, SearchHit
from gui_recorder.index.query import CJK, ParsedQuery, Term, compact_cjk

SNIPPET_TOKENS = 16

SCHEMA = (
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
    # CJK (issue 15): unicode61 sees a run of Chinese or Japanese as one token, so '数据库' inside
    # '中文测试数据库' is never found by text_fts. A trigram index of the same text finds any substring of
    # three characters or more (shorter ones: LIKE over the candidates, see _term_clause).
    """CREATE VIRTUAL TABLE IF NOT EXISTS text_cjk USING fts5(
        text, content='text_documents', content_rowid='id', tokenize='trigram'
    )""",
    """CREATE TRIGGER IF NOT EXISTS text_documents_cjk_ai AFTER INSERT ON text_documents BEGIN
        INSERT INTO text_cjk(rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS text_documents_cjk_ad AFTER DELETE ON text_documents BEGIN
        INSERT INTO text_cjk(text_cjk, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
)


class SqliteBackend(SqlBackend):
    name = "sqlite"
    schema = SCHEMA

    def ensure_schema(self) -> None:
        with self.engine.connect() as conn:
            had_cjk = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'text_cjk'")).first()
        super().ensure_schema()
        if not had_cjk:
            # Documents indexed before the trigram table existed: index them too, once.
            with self.engine.begin() as conn:
                conn.execute(text("INSERT INTO text_cjk(text_cjk) VALUES ('rebuild')"))

    def _term_clause(self, term: Term, name: str, params: dict) -> str:
        if CJK.search(term.text):
            needle = compact_cjk(term.text)
            if len(needle) >= 3:
                params[name] = '"' + needle.replace('"', '""') + '"'
                return f"d.id IN (SELECT rowid FROM text_cjk WHERE text_cjk MATCH :{name})"
            params[name] = self._like(term)
            return f"d.text LIKE :{name} ESCAPE '\\'"
        params[name] = ParsedQuery((term,)).to_fts5()
        return f"d.id IN (SELECT rowid FROM text_fts WHERE text_fts MATCH :{name})"

    def _delete_rows(self, conn: Connection, session_id: str) -> int:
        # Forgetting (issue 10): freed cells and pages are overwritten, so the text does not
        # linger in the database file. FTS5 drops the words from its index via the trigger.
        previous = conn.execute(text("PRAGMA secure_delete")).scalar()
        conn.execute(text("PRAGMA secure_delete = ON"))
        try:
            return super()._delete_rows(conn, session_id)
        finally:
            conn.execute(text(f"PRAGMA secure_delete = {int(previous or 0)}"))

    def search(self, query: ParsedQuery, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
        if query.has_cjk:
            with self.engine.connect() as conn:
                return self._with_deadline(
                    conn, lambda c: self._substring_search(c, query, filters, limit, offset))
        params: dict = {"match": query.to_fts5(), "limit": limit, "offset": offset, "open": MARK_OPEN,
                        "close": MARK_CLOSE, "tokens": SNIPPET_TOKENS, "candidates": RANK_CANDIDATES}
        where = ["text_fts MATCH :match", *self._filter_clauses(filters, params)]
        # Step 1: rank the newest RANK_CANDIDATES matches by bm25. FTS5 walks a
        # term's rowids in order cheaply, but ranking means scoring every match.
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

        def run(conn):
            ranked = conn.execute(text(ranked_sql), params).all()
            if not ranked:
                return ranked, {}
            ids = ",".join(str(int(r.id)) for r in ranked)
            rows = conn.execute(text(rows_sql.format(ids=ids)), params).all()
            return ranked, {r.id: r for r in rows}

        with self.engine.connect() as conn:
            ranked, rows = self._with_deadline(conn, run)
        return [self._hit(rows[rank.id], user=rows[rank.id].user, snippet=rows[rank.id].snippet,
                          score=float(rank.score))
                for rank in ranked if rank.id in rows]

    @staticmethod
    def _with_deadline(conn: Connection, run):
        raw = conn.connection.dbapi_connection
        deadline = time.monotonic() + QUERY_TIME_LIMIT_S
        # A non-zero return from the progress handler interrupts the statement.
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 20000)
        try:
            return run(conn)
        except Exception as exc:
            if time.monotonic() > deadline:
                raise DatabaseError(f"the search took longer than {QUERY_TIME_LIMIT_S:.0f} s and was stopped") from exc
            raise
        finally:
            raw.set_progress_handler(None, 0)


__all__ = ["SqliteBackend"]
