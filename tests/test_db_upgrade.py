"""A database made by the last release, with users in it, is upgraded at start-up (db/upgrade.py):
on SQLite (the dev stack keeps its var/) and on a real PostgreSQL 15."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gui_recorder.db import Database
from gui_recorder.errors import DatabaseError
from gui_recorder.gateway import accounts
from gui_recorder.settings import Settings
from tests.test_index_postgres import postgres_url  # noqa: F401  (a real PostgreSQL 15, started here)


def _as_last_release(db: Database) -> None:
    """The users table as the release before the identity columns had it."""
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE users DROP COLUMN source"))
        conn.execute(text("ALTER TABLE users DROP COLUMN external_groups"))


def _check_upgrade(settings: Settings) -> None:
    db = Database(settings)
    try:
        db.create_all()
        accounts.ensure_user(db, "olduser", "old-user-password-1", "vendor")
        _as_last_release(db)
    finally:
        db.dispose()
    db = Database(settings)
    try:
        db.create_all()
        user = accounts.authenticate(db, "olduser", "old-user-password-1")
        assert user.source == "local" and user.external_groups == []
        db.create_all()  # and again: nothing left to add, nothing fails
    finally:
        db.dispose()


def test_a_sqlite_database_of_the_last_release_is_upgraded(tmp_path):
    _check_upgrade(Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s"))


def test_a_postgresql_database_of_the_last_release_is_upgraded(tmp_path, postgres_url):  # noqa: F811
    _check_upgrade(Settings(var_dir=tmp_path, secret_key="k" * 32, s3_secret_key="s", database_url=postgres_url))


def test_a_new_column_old_rows_cannot_fill_is_refused_by_name(tmp_path):
    from sqlalchemy import Column, Integer, MetaData, Table, create_engine

    from gui_recorder.db.upgrade import add_missing_columns

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE things (id INTEGER PRIMARY KEY)"))
    meta = MetaData()
    Table("things", meta, Column("id", Integer, primary_key=True), Column("size", Integer, nullable=False))
    with pytest.raises(DatabaseError, match="things.size"):
        add_missing_columns(engine, meta)
    engine.dispose()
