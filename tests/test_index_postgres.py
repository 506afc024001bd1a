"""The same index tests against a REAL PostgreSQL 15 (started here, on loopback).

The behaviour tests of test_index.py are imported and run again with the
``index`` fixture below, so both backends answer the same questions.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from gui_recorder.index import SearchIndex
from gui_recorder.index.postgres import tsquery_text
from gui_recorder.index.query import parse_query
from gui_recorder.stack.process import free_port
from tests.test_index import (  # noqa: F401  (collected again here, on PostgreSQL)
    ALICE, BOB, TypedLine, hits, screen, settings, test_filters, test_limits_and_bad_input_are_typed_errors,
    test_operators_typed_by_users_are_searched_as_words, test_ranking_prefers_the_better_match,
    test_reindexing_replaces_and_never_duplicates, test_result_count_is_limited,
    test_session_text_is_the_timeline_sorted_by_offset, test_snippet_marks_matches_and_escapes_html,
    test_user_input_never_causes_a_syntax_error, test_words_phrases_and_prefixes,
    test_chinese_japanese_russian_and_umlauts_are_found,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*argv: str, **kw) -> subprocess.CompletedProcess:
    # The server refuses to run as root: run it as the system's postgres user.
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, text=True,
                          **kw)


@pytest.fixture(scope="module")
def postgres_url():
    if not (PG_BIN / "postgres").exists():
        pytest.fail("PostgreSQL 15 is not installed (Debian: postgresql-15)")
    # pytest's temporary directories are private to root: postgres needs its own.
    base = Path(tempfile.mkdtemp(prefix="gr-test-pg-"))
    data = base / "data"
    shutil.chown(base, "postgres")
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    port = free_port()
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "30", "-o",
                 f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def index(postgres_url):
    idx = SearchIndex(create_engine(postgres_url))
    with idx.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("DELETE FROM text_documents"))
    idx.index_session(ALICE, [TypedLine("sudo systemctl restart nginx", 1200, 4000),
                              TypedLine("echo <Ctrl+C> done", 9000, 9500)],
                      [screen("Password expired for user root", 3000, 60000),
                       screen("Résumé of changes <b>bold</b>", 70000)])
    idx.index_session(BOB, [TypedLine("cat /etc/passwd", 500, 900)],
                      [screen("nginx status: active (running)", 2000)])
    yield idx
    idx.close()


def test_backend_is_postgres(index):
    assert index.backend.name == "postgresql"
    started = time.perf_counter()
    assert hits(index, "systemctl") == [("s-alice", "typed", 1200)]
    assert time.perf_counter() - started < 30  # sanity: it answered at all


def test_tsquery_text_quotes_every_word():
    assert tsquery_text(parse_query("a'b \"c d\" e* !x|y")) == "('a' <-> 'b') & ('c' <-> 'd') & ('e':*) & ('x' <-> 'y')"
