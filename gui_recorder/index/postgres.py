"""The PostgreSQL full-text search backend.

Same table shape as the SQLite backend, with a stored ``tsvector`` column
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
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gui_recorder.errors import DatabaseError
from gui_recorder.index.documents import (
    SearchFilters, SearchHit, SessionMeta, TextDocument, TimelineEntry, epoch_ms,
)
from gui_recorder.index.query import ParsedQuery
from gui_recorder.index.sqlite import QUERY_TIME_LIMIT_S, RANK_CANDIDATES, _bbox, _snippet_html

log = logging.getLogger(__name__)

CONFIG = "gr_text"
_HEADLINE = "StartSel=\x02, StopSel=\x03, MaxWords=24, MinWords=10, MaxFragments=1, FragmentDelimiter=…"

_HIDE = "\x04\x05"
_UNHIDE = str.maketrans(_HIDE, "<>")

SCHEMA = [
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
]

_FILTER_COLUMNS = {"user": 'd."user"', "connection": "d.connection", "protocol": "d.protocol",
                   "source": "d.source"}


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


class PostgresBackend:
    name = "postgresql"

    def __init__(self, engine: Engine):
        self.engine = engine

    def ensure_schema(self) -> None:
        with self.engine.begin() as conn:
            has_config = conn.execute(text("SELECT 1 FROM pg_ts_config WHERE cfgname = :n"), {"n": CONFIG}).first()
            if not has_config:
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
            for statement in SCHEMA:
                conn.execute(text(statement))

    def replace_session(self, session: SessionMeta, documents: list[TextDocument]) -> int:
        started = epoch_ms(session.started_at)
        rows = [{
            "session_id": session.session_id, "user": session.user, "connection": session.connection,
            "protocol": session.protocol, "started_ms": started, "at_ms": started + d.offset_ms,
            "offset_ms": d.offset_ms, "source": d.source, "text": d.text.replace("\x00", ""),
            "x": d.bbox[0] if d.bbox else None, "y": d.bbox[1] if d.bbox else None,
            "w": d.bbox[2] if d.bbox else None, "h": d.bbox[3] if d.bbox else None,
            "confidence": d.confidence, "first_seen_ms": d.first_seen_ms, "last_seen_ms": d.last_seen_ms,
        } for d in documents]
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM text_documents WHERE session_id = :s"), {"s": session.session_id})
            if rows:
                conn.execute(text(
                    'INSERT INTO text_documents (session_id, "user", connection, protocol, started_ms, at_ms,'
                    " offset_ms, source, text, x, y, w, h, confidence, first_seen_ms, last_seen_ms)"
                    " VALUES (:session_id, :user, :connection, :protocol, :started_ms, :at_ms, :offset_ms,"
                    " :source, :text, :x, :y, :w, :h, :confidence, :first_seen_ms, :last_seen_ms)"), rows)
        return len(rows)

    def delete_session(self, session_id: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(text("DELETE FROM text_documents WHERE session_id = :s"), {"s": session_id}).rowcount

    def search(self, query: ParsedQuery, filters: SearchFilters, limit: int, offset: int = 0) -> list[SearchHit]:
        tsquery = tsquery_text(query)
        if not tsquery:
            return []
        where = ["d.tsv @@ to_tsquery(:cfg, :q)"]
        params: dict = {"cfg": CONFIG, "q": tsquery, "limit": limit, "offset": offset,
                        "candidates": RANK_CANDIDATES, "hl": _HEADLINE, "hide": _HIDE}
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
        return [SearchHit(
            session_id=r.session_id, user=r.user_name, connection=r.connection, protocol=r.protocol,
            source=r.source, offset_ms=r.offset_ms, at=datetime.fromtimestamp(r.at_ms / 1000, UTC),
            text=r.text, snippet=_snippet_html(r.snippet.translate(_UNHIDE)), bbox=_bbox(r), confidence=r.confidence,
            first_seen_ms=r.first_seen_ms, last_seen_ms=r.last_seen_ms, score=-float(r.score),
        ) for r in rows]

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
