"""The engine and sessions: SQLite under var/ by default, PostgreSQL when configured."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gui_recorder.db import upgrade
from gui_recorder.db import audit_chain
from gui_recorder.db.models import Base
from gui_recorder.errors import DatabaseError
from gui_recorder.settings import Settings
from gui_recorder.siem import AuditStream

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Writers queue behind SQLite's single write lock instead of failing at once;
# our writes are a few rows, so 5 s of waiting means something is stuck.
SQLITE_BUSY_TIMEOUT_MS = 5000


def utc_now() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers (the auditors' UI) never block the writer (live sessions).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # SQLite ignores foreign keys unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _private_file(path: Path) -> None:
    """The SQLite file holds users, sealed credentials and audit events: 0600,
    created so before SQLite opens it (its -wal and -shm files take its mode)."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # one an older version created 0644
    except OSError as exc:
        raise DatabaseError(f"cannot create the database file {path}: {exc}") from exc


class Database:
    """The gateway's database.

    ``clock`` is the one source of "now" for every stamp and expiry the gateway
    writes, so tests can move time instead of sleeping.
    """

    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.url = settings.resolved_database_url
        self.now: Clock = clock or utc_now
        self.settings = settings  # what the repositories over it need (e.g. the password-hash costs)
        if self.url.startswith("sqlite"):
            if self.url.startswith("sqlite:///") and ":memory:" not in self.url:
                settings.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                _private_file(Path(self.url.removeprefix("sqlite:///").split("?", 1)[0]))
            # Request handlers run in a thread pool: one connection may serve several threads.
            self.engine = create_engine(self.url, connect_args={"check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Every audit event, whoever records it, is a link of the chain and, once committed, goes to the
        # configured SIEM sinks (none: no stream).
        self.audit_stream = AuditStream.from_settings(settings)
        audit_chain.install(self._sessions, self.audit_stream.publish if self.audit_stream else None)

    def create_all(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
            upgrade.add_missing_columns(self.engine, Base.metadata)  # columns newer than the database
            audit_chain.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot create the tables at {self._where()}: {exc}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error.

        Objects stay readable after the block (``expire_on_commit=False``) so
        callers can return them.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            raise DatabaseError(f"database error at {self._where()}: {exc.orig}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        if self.audit_stream is not None:
            self.audit_stream.close()  # what a sink has not taken stays in its spool for the next start
        self.engine.dispose()

    def _where(self) -> str:
        # Never print a password that may be in the URL.
        return self.engine.url.render_as_string(hide_password=True)
