"""The search index (SQLite FTS5): queries, escaping, filters, idempotent re-indexing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from gui_recorder.errors import ConfigError, DatabaseError, SearchQueryError
from gui_recorder.index import SearchIndex, SessionMeta, parse_query, search_command, session_text_api
from gui_recorder.index.index import MAX_LIMIT, search_api
from gui_recorder.index.query import MAX_QUERY_CHARS
from gui_recorder.settings import Settings
from gui_recorder.text import ScreenText, TypedLine

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ALICE = SessionMeta("s-alice", "alice", "prod-db", "rdp", T0)
BOB = SessionMeta("s-bob", "bob", "web-01", "vnc", T0 + timedelta(days=1))


def screen(text, first, last=None, x=10, y=20):
    return ScreenText(text, x, y, 200, 14, 91.5, first, last if last is not None else first + 500)


@pytest.fixture
def settings(tmp_path):
    return Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s" * 12)


@pytest.fixture
def index(settings):
    idx = SearchIndex.from_settings(settings)
    idx.index_session(ALICE, [TypedLine("sudo systemctl restart nginx", 1200, 4000),
                              TypedLine("echo <Ctrl+C> done", 9000, 9500)],
                      [screen("Password expired for user root", 3000, 60000),
                       screen("Résumé of changes <b>bold</b>", 70000)])
    idx.index_session(BOB, [TypedLine("cat /etc/passwd", 500, 900)],
                      [screen("nginx status: active (running)", 2000)])
    yield idx
    idx.close()


def hits(index, query, **kw):
    return [(h.session_id, h.source, h.offset_ms) for h in index.search(query, **kw)]


def test_words_phrases_and_prefixes(index):
    assert hits(index, "restart nginx") == [("s-alice", "typed", 1200)]
    assert set(hits(index, "nginx")) == {("s-alice", "typed", 1200), ("s-bob", "screen", 2000)}
    assert hits(index, '"expired for user"') == [("s-alice", "screen", 3000)]
    assert hits(index, '"user for expired"') == []
    assert set(hits(index, "pass*")) == {("s-alice", "screen", 3000), ("s-bob", "typed", 500)}
    # Diacritics fold both ways.
    assert hits(index, "resume") == [("s-alice", "screen", 70000)]


def test_snippet_marks_matches_and_escapes_html(index):
    hit = index.search("bold")[0]
    assert "<mark>bold</mark>" in hit.snippet
    assert "&lt;b&gt;" in hit.snippet and "<b>" not in hit.snippet
    assert hit.text == "Résumé of changes <b>bold</b>"
    assert hit.thumbnail_url == "/api/sessions/s-alice/thumbnails?t=70000"
    assert hit.at == T0 + timedelta(milliseconds=70000)
    assert hit.bbox == (10, 20, 200, 14) and hit.confidence == 91.5
    assert (hit.first_seen_ms, hit.last_seen_ms) == (70000, 70500)


@pytest.mark.parametrize("query", ['AND', 'OR nginx', 'NOT', 'NEAR(a b)', '"', '"unbalanced nginx', "nginx*)",
                                   "col:nginx", "^nginx", "nginx -x", "{a b}", "a'b", "\\", "🙂 nginx", "***x"])
def test_user_input_never_causes_a_syntax_error(index, query):
    try:
        index.search(query)
    except SearchQueryError:
        pass  # "nothing searchable" is a clear, typed answer too


@given(st.text(max_size=60))
@hsettings(max_examples=150, deadline=None)
def test_any_text_is_a_result_or_a_typed_error(tmp_path_factory, text):
    idx = _shared_index(tmp_path_factory)
    try:
        assert isinstance(idx.search(text), list)
    except SearchQueryError:
        pass


_SHARED: dict = {}


def _shared_index(tmp_path_factory):
    if "idx" not in _SHARED:
        from sqlalchemy import create_engine

        idx = SearchIndex(create_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'i.db'}"))
        idx.index_session(ALICE, [TypedLine("AND OR NOT NEAR \" quotes", 1, 2)], [])
        _SHARED["idx"] = idx
    return _SHARED["idx"]


def test_operators_typed_by_users_are_searched_as_words(index):
    index.index_session(SessionMeta("s-ops", "carol", "x", "rdp", T0), [TypedLine("git log OR NOT", 5, 6)], [])
    assert hits(index, "OR NOT") == [("s-ops", "typed", 5)]


def test_filters(index):
    assert hits(index, "nginx", user="bob") == [("s-bob", "screen", 2000)]
    assert hits(index, "nginx", connection="prod-db") == [("s-alice", "typed", 1200)]
    assert hits(index, "nginx", protocol="vnc") == [("s-bob", "screen", 2000)]
    assert hits(index, "nginx", source="screen") == [("s-bob", "screen", 2000)]
    # since/until are wall-clock times of the moment (session start + offset).
    assert hits(index, "nginx", since=T0 + timedelta(hours=1)) == [("s-bob", "screen", 2000)]
    assert hits(index, "nginx", until=T0 + timedelta(hours=1)) == [("s-alice", "typed", 1200)]
    assert hits(index, "expired", since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=4)) == \
        [("s-alice", "screen", 3000)]
    assert hits(index, "expired", since=T0 + timedelta(seconds=3, milliseconds=1)) == []
    # Naive datetimes are UTC.
    assert hits(index, "nginx", since=datetime(2026, 3, 2)) == [("s-bob", "screen", 2000)]


def test_ranking_prefers_the_better_match(index):
    index.index_session(SessionMeta("s-rank", "dave", "x", "rdp", T0), [], [
        screen("nginx nginx nginx", 10), screen("a long line that mentions nginx once among many other words", 20,
                                                y=300)])
    ranked = index.search("nginx", user="dave")
    assert [h.offset_ms for h in ranked] == [10, 20]
    assert ranked[0].score <= ranked[1].score  # bm25: lower is better


def test_reindexing_replaces_and_never_duplicates(index):
    typed = [TypedLine("uptime", 100, 200)]
    for _ in range(3):
        assert index.index_session(ALICE, typed, [screen("load average", 300)]) == 2
    assert hits(index, "uptime") == [("s-alice", "typed", 100)]
    assert hits(index, "nginx", user="alice") == []  # the earlier pass's documents are gone
    assert [e.text for e in index.session_text("s-alice")] == ["uptime", "load average"]


def test_session_text_is_the_timeline_sorted_by_offset(index):
    body = session_text_api(index, "s-alice")
    assert body["count"] == 4
    offsets = [e["offset_ms"] for e in body["entries"]]
    assert offsets == sorted(offsets) == [1200, 3000, 9000, 70000]
    assert body["entries"][1]["source"] == "screen" and body["entries"][1]["bbox"] == [10, 20, 200, 14]
    assert session_text_api(index, "nope")["count"] == 0


def test_limits_and_bad_input_are_typed_errors(index):
    with pytest.raises(SearchQueryError):
        index.search("x" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(SearchQueryError):
        index.search("   ")
    with pytest.raises(SearchQueryError):
        index.search("- * ()")
    with pytest.raises(SearchQueryError):
        index.search(" ".join(f"w{i}" for i in range(40)))
    with pytest.raises(SearchQueryError):
        index.search("nginx", limit=MAX_LIMIT + 1)
    with pytest.raises(SearchQueryError):
        index.search("nginx", source="audio")
    with pytest.raises(SearchQueryError):
        index.search("nginx", since=T0, until=T0)
    assert SearchQueryError.http_status == 400


def test_result_count_is_limited(index):
    many = [TypedLine(f"ping host{i}", i * 10, i * 10 + 5) for i in range(30)]
    index.index_session(SessionMeta("s-many", "eve", "x", "rdp", T0), many, [])
    assert len(index.search("ping", limit=7)) == 7
    page2 = index.search("ping", limit=7, offset=7)
    assert len(page2) == 7 and not {h.offset_ms for h in page2} & {h.offset_ms for h in index.search("ping", limit=7)}


def test_query_parsing():
    q = parse_query('alpha "beta  gamma" delt* "a""b')
    assert [(t.text, t.phrase, t.prefix) for t in q.terms] == [
        ("alpha", False, False), ("beta gamma", True, False), ("delt", False, True), ("a", True, False),
        ("b", True, False)]
    assert q.to_fts5() == '"alpha" "beta gamma" "delt"* "a" "b"'


def test_search_api_and_cli_function(index, settings):
    body = search_api(index, "nginx", user="bob")
    assert body["count"] == 1
    assert body["results"][0]["thumbnail_url"] == "/api/sessions/s-bob/thumbnails?t=2000"
    out = search_command(settings, "nginx")
    assert "s-alice" in out and "s-bob" in out and "[[nginx]]" in out
    data = json.loads(search_command(settings, "passwd", as_json=True, user="bob"))
    assert data["count"] == 1 and data["results"][0]["text"] == "cat /etc/passwd"
    assert search_command(settings, "zzzznothing") == "no matches"


def test_database_errors_are_translated(tmp_path):
    from sqlalchemy import create_engine

    path = tmp_path / "ro.db"
    idx = SearchIndex(create_engine(f"sqlite:///{path}"))
    idx.engine.dispose()
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError):
        idx.search("anything")


def test_backends_are_chosen_by_database_dialect():
    from gui_recorder.index.index import backend_for
    from gui_recorder.index.postgres import PostgresBackend
    from gui_recorder.index.sqlite import SqliteBackend

    assert backend_for("sqlite") is SqliteBackend
    assert backend_for("postgresql") is PostgresBackend
    with pytest.raises(ConfigError, match="oracle"):
        backend_for("oracle")


def test_chinese_japanese_russian_and_umlauts_are_found(index):
    """CJK has no spaces between words: a word inside a run is found (trigram / pg_trgm), even of two
    characters; Cyrillic and umlauts go through the word index (diacritics fold)."""
    lang = SessionMeta("s-lang", "li", "cn-01", "vnc", T0 + timedelta(days=2))
    index.index_session(lang, [TypedLine("echo 服务器", 100, 200)],
                        [screen("中文测试数据库服务器密码", 1000), screen("Größe der Überprüfung", 2000),
                         screen("Привет дорогой мир", 3000), screen("日本語のテストサーバー", 4000),
                         screen("ERROR 数据库 connection failed", 5000)])
    assert set(hits(index, "数据库")) == {("s-lang", "screen", 1000), ("s-lang", "screen", 5000)}
    assert set(hits(index, "服务器")) == {("s-lang", "typed", 100), ("s-lang", "screen", 1000)}
    assert hits(index, "密码") == [("s-lang", "screen", 1000)]  # two characters: under a trigram
    assert hits(index, "中文 密码") == [("s-lang", "screen", 1000)]  # terms ANDed
    assert hits(index, '"中文 测试"') == [("s-lang", "screen", 1000)]  # OCR's spaces between characters
    assert hits(index, "数据库 connection") == [("s-lang", "screen", 5000)]  # CJK and a word together
    assert hits(index, "数据库 nginx") == []
    assert hits(index, "テスト") == [("s-lang", "screen", 4000)]
    assert hits(index, "服务器", source="typed") == [("s-lang", "typed", 100)]
    assert hits(index, "数据库", user="alice") == []
    assert hits(index, "дорогой") == [("s-lang", "screen", 3000)]
    assert hits(index, "Überprüfung") == hits(index, "uberprufung") == [("s-lang", "screen", 2000)]
    assert hits(index, "größe") == [("s-lang", "screen", 2000)]
    snippet = index.search("数据库 connection")[0].snippet
    assert snippet == "ERROR <mark>数据库</mark> <mark>connection</mark> failed"
    assert hits(index, "100%数据") == [] and hits(index, "数_库") == []  # LIKE's wildcards are literal
