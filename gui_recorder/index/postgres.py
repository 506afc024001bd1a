"""The PostgreSQL full-text search backend.

Same table shape as the SQLite backend (and the same insert, delete and
timeline code: backend.py), with a stored ``tsvector`` column
(GIN-indexed) computed by the ``gr_text`` configuration: the 'simple'
dictionary (no stemming, like FTS5's unicode61) after ``unaccent`` when the
extension is available, so 'resume' finds 'résumé' on both backends.
Text is split on anything but letters and digits before it is indexed, as
FTS5's unicode61 tokenizer does ('/etc/passwd' is 'etc' 'passwd' on both).
User terms never reach tsquery syntax raw: only letter/digit runs, each
quoted, are put into the query text (see ``tsquery_text``).
"""

from __future__ import annotations

import logging
import re
import time

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from gui_recorder.errors import DatabaseError
from gui_recorder.index.backend import MARK_CLOSE, MARK_OPEN, QUERY_TIME_LIMIT_S, RANK_CANDIDATES, SqlBackend
from gui_recorder.index.documents import SearchFilters, SearchHit
from gui_recorder.index.query import CJK, ParsedQuery, Term

log = logging.getLogger(__name__)

CONFIG = "gr_text"
_HEADLINE = f"StartSel={MARK_OPEN}, StopSel={MARK_CLOSE}, MaxWords=24, MinWords=10, MaxFragments=1, FragmentDelimiter=…"

_HIDE = "\x04\x05"
_UNHIDE = str.maketrans(_HIDE, "<>")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS text_documents (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL,
        "user" TEXT NOT NULL,
        connection TEXT NOT NULL,
        protocol TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        offset_ms BIGINT NOT NULL,
        source TEXT NOT NULL,
        text TEXT NOT NULL,
        x INTEGER, y INTEGER, w INTEGER, h INTEGER,
        confidence REAL,
        first_seen_ms BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        tsv tsvector GENERATED ALWAYS AS
            (to_tsvector('gr_text', regexp_replace(text, '[^[:alnum:]]+', ' ', 'g'))) STORED
    )""",
    "CREATE INDEX IF NOT EXISTS text_documents_session ON text_documents (session_id, offset_ms)",
    "CREATE INDEX IF NOT EXISTS text_documents_at ON text_documents (at_ms)",
    "CREATE INDEX IF NOT EXISTS text_documents_tsv ON text_documents USING GIN (tsv)",
)

def tsquery_text(query: ParsedQuery) -> str:
    """``to_tsquery`` text for the parsed query: terms ANDed, phrase words with ``<->``.

    Only runs of letters and digits are used, each single-quoted: no operator,
    quote or backslash the user typed can reach the tsquery parser.
    """
    parts = []
    for term in query.terms:
        words = [w.lower() for w in re.findall(r"[^\W_]+", term.text)]
        if not words:
            continue
        quoted = [f"'{w}'" for w in words]
        if term.prefix:
            quoted[-1] += ":*"
        parts.append("(" + " <-> ".join(quoted) + ")")
    return " & ".join(parts)


class PostgresBackend(SqlBackend):
    name = "postgresql"
    schema = SCHEMA
    user_column = '"user"'  # a reserved word in PostgreSQL

    def _prepare_schema(self, conn: Connection) -> None:
        has_config = conn.execute(text("SELECT 1 FROM pg_ts_config WHERE cfgname = :n"), {"n": CONFIG}).first()
        if has_config:
            return
        unaccent = True
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS unaccent"))
        except SQLAlchemyError as exc:
            # Not installed or not allowed: search still works, accents matter.
            log.warning("unaccent is not available (%s); accents will matter in searches", exc)
            unaccent = False
        conn.execute(text(f"CREATE TEXT SEARCH CONFIGURATION {CONFIG} (COPY = simple)"))
        if unaccent:
            conn.execute(text(f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR "
                              "hword, hword_part, word WITH unaccent, simple"))

    def ensure_schema(self) -> None:
        super().ensure_schema()
        # CJK (issue 15): 'simple' sees a run of Chinese or Japanese as one word; such terms are
        # searched as substrings (ILIKE), which pg_trgm's GIN index serves.
        try:
            with self.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
                conn.execute(text("CREATE INDEX IF NOT EXISTS text_documents_trgm ON text_documents "
                                  "USING GIN (text gin_trgm_ops)"))
        except SQLAlchemyError as exc:
            log.warning("pg_trgm is not available (%s); CJK searches scan the documents", exc)

    def _term_clause(self, term: Term, name: str, params: dict) -> str:
        if CJK.search(term.text):
            params[name] = self._like(term)
            return f"d.text ILIKE :{name}"
        params[name] = tsquery_text(ParsedQuery((term,)))
        params["cfg"] = CONFIG
        return f"d.tsv @@ to_tsquery(CAST(:cfg AS regconfig), :{name})"

    def _clean_text(self, value: str) -> str:
        # PostgreSQL text cannot hold NUL (SQLite's can).
        return value.replace("\x00", "")

    def search(self, query: ParsedQuery, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
        if query.has_cjk:
            with self.engine.connect() as conn:
                conn.execute(text(f"SET LOCAL statement_timeout = {int(QUERY_TIME_LIMIT_S * 1000)}"))
                return self._substring_search(conn, query, filters, limit, offset)
        tsquery = tsquery_text(query)
        if not tsquery:
            return []
        params: dict = {"cfg": CONFIG, "q": tsquery, "limit": limit, "offset": offset,
                        "candidates": RANK_CANDIDATES, "hl": _HEADLINE, "hide": _HIDE}
        where = ["d.tsv @@ to_tsquery(:cfg, :q)", *self._filter_clauses(filters, params)]
        # As in SQLite: rank the newest RANK_CANDIDATES matches, headline the page only.
        sql = (
            "WITH q AS (SELECT to_tsquery(CAST(:cfg AS regconfig), :q) AS q),"
            " candidates AS (SELECT d.* FROM text_documents d"
            f" WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT :candidates),"
            " ranked AS (SELECT c.*, ts_rank_cd(c.tsv, q.q) AS score FROM candidates c, q"
            " ORDER BY score DESC, c.id DESC LIMIT :limit OFFSET :offset)"
            ' SELECT r.id, r.session_id, r."user" AS user_name, r.connection, r.protocol, r.source, r.offset_ms,'
            " r.at_ms, r.text, r.x, r.y, r.w, r.h, r.confidence, r.first_seen_ms, r.last_seen_ms, r.score,"
            # ts_headline drops what looks like HTML tags: hide < and > from it.
            " ts_headline(CAST(:cfg AS regconfig), translate(r.text, '<>', :hide), q.q, :hl) AS snippet"
            " FROM ranked r, q ORDER BY r.score DESC, r.id DESC"
        )
        with self.engine.connect() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {int(QUERY_TIME_LIMIT_S * 1000)}"))
            started = time.monotonic()
            try:
                rows = conn.execute(text(sql), params).all()
            except SQLAlchemyError as exc:
                if time.monotonic() - started >= QUERY_TIME_LIMIT_S:
                    raise DatabaseError(f"the search took longer than {QUERY_TIME_LIMIT_S:.0f} s "
                                        "and was stopped") from exc
                raise
        # ts_rank_cd is higher for better matches: negated, lower is better as with FTS5's bm25.
        return [self._hit(r, user=r.user_name, snippet=r.snippet.translate(_UNHIDE), score=-float(r.score))
                for r in rows]
