"""The audit log's hash chain (issue 13, item 4): every kind of tampering is caught and named.

Each test records real events through the real writers (``record_event``, and a worker-style
session that adds several in one transaction), then tampers with the SQLite file the way someone
with database access would (plain SQL, outside the application) and runs ``gui-recorder
verify-audit`` as a user would.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading

import pytest

from gui_recorder.cli import main
from gui_recorder.db import AuditEvent, Database
from gui_recorder.db.audit_chain import GENESIS, canonical, verify
from gui_recorder.gateway.audit import list_events, record_event
from gui_recorder.settings import Settings
from test_index_postgres import postgres_url  # noqa: F401 - a real PostgreSQL 15 for this module


@pytest.fixture
def db(tmp_path, monkeypatch):
    settings = Settings(var_dir=tmp_path, secret_key=secrets.token_urlsafe(16), s3_secret_key="x")
    monkeypatch.setenv("GUI_RECORDER_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("GUI_RECORDER_SECRET_KEY", "k" * 20)
    monkeypatch.setenv("GUI_RECORDER_S3_SECRET_KEY", "x")
    database = Database(settings)
    database.create_all()
    for i in range(6):
        record_event(database, f"user{i}", "auth.login", None, "127.0.0.1", {"n": i, "why": "ünïcode"})
    with database.session() as s:  # several in one transaction, as the lifecycle job adds them
        for tier in ("cold", "archive"):
            s.add(AuditEvent(at=database.now(), username=None, action=f"storage.move_{tier}", target="s1",
                             detail={"tier": tier}))
    yield database
    database.dispose()


def _sql(db: Database, statement: str, *args) -> None:
    path = db.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(statement, args)


def _verify_cli(capsys) -> tuple[int, str]:
    code = main(["verify-audit"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_an_untouched_chain_verifies_and_links_every_event(db, capsys):
    events = list(reversed(list_events(db)))
    assert [e["seq"] for e in events] == list(range(1, 9))
    assert events[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:]))
    report = verify(db.session)
    assert report.ok and report.events == 8 and report.head_seq == 8 and report.head_hash == events[-1]["hash"]
    code, out = _verify_cli(capsys)
    assert code == 0 and "8 events" in out, out


def test_the_export_carries_hashes_a_third_party_can_recompute(db):
    import hashlib
    from datetime import datetime

    prev = GENESIS
    for e in reversed(list_events(db)):
        line = json.loads(json.dumps(e))  # what the JSON-lines export holds
        assert line["prev_hash"] == prev
        body = canonical(line["seq"], datetime.fromisoformat(line["at"]), line["username"], line["action"],
                         line["target"], line["client_addr"], line["detail"], line["prev_hash"])
        assert hashlib.sha256(body).hexdigest() == line["hash"]
        prev = line["hash"]


def test_a_flipped_field_is_caught_at_its_event(db, capsys):
    _sql(db, "UPDATE audit_events SET username = 'someone-else' WHERE seq = 4")
    report = verify(db.session)
    assert not report.ok and report.first_break.seq == 4 and "fields do not match" in report.first_break.reason
    assert report.events == 3
    code, out = _verify_cli(capsys)
    assert code == 1 and "seq 4" in out and "fields do not match its hash" in out, out


def test_a_changed_detail_is_caught_too(db):
    _sql(db, "UPDATE audit_events SET detail = ? WHERE seq = 7", json.dumps({"tier": "elsewhere"}))
    assert verify(db.session).first_break.seq == 7


def test_a_deleted_event_is_caught_at_the_one_after_it(db, capsys):
    _sql(db, "DELETE FROM audit_events WHERE seq = 3")
    report = verify(db.session)
    assert report.first_break.seq == 4 and "missing (seq 3: deleted)" in report.first_break.reason
    code, out = _verify_cli(capsys)
    assert code == 1 and "seq 4" in out, out


def test_a_reordered_pair_is_caught(db):
    # Swap the places of events 5 and 6 (each keeps its own fields and hashes, only the order changes).
    _sql(db, "UPDATE audit_events SET seq = -5 WHERE seq = 5")
    _sql(db, "UPDATE audit_events SET seq = 5 WHERE seq = 6")
    _sql(db, "UPDATE audit_events SET seq = 6 WHERE seq = -5")
    report = verify(db.session)
    assert report.first_break.seq == 5 and "prev_hash" in report.first_break.reason


def test_a_truncated_tail_is_caught_by_the_head(db):
    _sql(db, "DELETE FROM audit_events WHERE seq >= 7")
    report = verify(db.session)
    assert not report.ok and "head says seq 8 but the chain ends at seq 6" in report.first_break.reason


def test_a_row_inserted_by_hand_is_caught(db):
    _sql(db, "INSERT INTO audit_events (at, username, action, detail) VALUES ('2026-01-01 00:00:00', 'x', "
             "'auth.login', '{}')")
    report = verify(db.session)
    assert not report.ok and "without a link" in report.first_break.reason


def test_the_application_refuses_to_change_or_delete_an_event(db):
    with pytest.raises(ValueError, match="append-only"):
        with db.session() as s:
            s.get(AuditEvent, 1).username = "rewritten"
    assert verify(db.session).ok


def test_concurrent_writers_never_share_a_predecessor(db, tmp_path):
    # A second Database on the same file is what the worker process is: its own engine and connections.
    other = Database(db.settings)
    errors: list[BaseException] = []

    def write(database: Database, who: str) -> None:
        try:
            for i in range(25):
                record_event(database, who, "session.view", f"s{i}", None, {})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(d, f"w{n}")) for n, d in enumerate((db, other, db, other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert not errors, errors
    report = verify(db.session)
    assert report.ok and report.events == 8 + 100, report.first_break


def test_a_rolled_back_transaction_leaves_no_link(db):
    with pytest.raises(RuntimeError):
        with db.session() as s:
            s.add(AuditEvent(at=db.now(), username="x", action="auth.login", detail={}))
            s.flush()
            raise RuntimeError("the caller's own failure")
    record_event(db, "y", "auth.login", None, None)
    report = verify(db.session)
    assert report.ok and report.head_seq == 9


def test_events_from_before_the_chain_are_an_unchained_prefix(tmp_path):
    settings = Settings(var_dir=tmp_path, secret_key="k" * 20, s3_secret_key="x")
    path = tmp_path / "gui-recorder.db"
    with sqlite3.connect(path) as conn:  # the table as an older version created it
        conn.execute("CREATE TABLE audit_events (id INTEGER PRIMARY KEY, at DATETIME, username VARCHAR(64), "
                     "action VARCHAR(64), target VARCHAR(255), client_addr VARCHAR(64), detail JSON)")
        conn.execute("INSERT INTO audit_events (at, username, action, detail) VALUES "
                     "('2025-01-01 00:00:00.000000', 'old', 'auth.login', '{}')")
    database = Database(settings)
    database.create_all()
    record_event(database, "new", "auth.login", None, None)
    report = verify(database.session)
    database.dispose()
    assert report.ok and report.unchained == 1 and report.events == 1


def test_the_chain_holds_on_postgresql_with_concurrent_writers(postgres_url, tmp_path):
    """PostgreSQL (a real 15): the head row's lock serialises two processes' writers as SQLite's write lock
    does, and tampering is caught the same way."""
    from sqlalchemy import text

    settings = Settings(var_dir=tmp_path, secret_key="k" * 20, s3_secret_key="x", database_url=postgres_url)
    dbs = [Database(settings), Database(settings)]  # two engines: the gateway's and the worker's
    dbs[0].create_all()
    with dbs[0].engine.begin() as conn:  # the module's PostgreSQL is shared: start from an empty chain
        conn.execute(text("DELETE FROM audit_events"))
        conn.execute(text("UPDATE audit_chain_head SET seq = 0, hash = :g"), {"g": GENESIS})
    errors: list[BaseException] = []

    def write(database: Database, who: str) -> None:
        try:
            for i in range(30):
                record_event(database, who, "session.view", f"s{i}", None, {"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(dbs[n % 2], f"w{n}")) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = verify(dbs[0].session)
    assert report.ok and report.events == 120, report.first_break
    with dbs[0].engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET target = 'other' WHERE seq = 77"))
    assert verify(dbs[0].session).first_break.seq == 77
    for d in dbs:
        d.dispose()
