"""Columns added to a table after a database was made, added to that database at start-up.

``create_all`` makes missing tables, never missing columns: a gateway upgraded over an existing
database (the dev stack keeps its ``var/``) would fail on its first query of a new column. Only
additions are done here, and only of columns an old row can have (nullable, or with a server
default); anything else is a ``DatabaseError`` that says which column, not a guess.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateColumn, MetaData

from gui_recorder.errors import DatabaseError

log = logging.getLogger(__name__)


def add_missing_columns(engine: Engine, metadata: MetaData) -> list[str]:
    """``table.column`` of each column added."""
    found = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if not found.has_table(table.name):
                continue
            have = {c["name"] for c in found.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable and column.server_default is None:
                    raise DatabaseError(f"the database lacks {table.name}.{column.name}, which old rows cannot "
                                        "fill (no server default): migrate it by hand")
                spec = CreateColumn(column).compile(dialect=engine.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))
                added.append(f"{table.name}.{column.name}")
    if added:
        log.warning("database upgraded: added %s", ", ".join(added))
    return added
