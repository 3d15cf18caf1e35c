"""What a block of code sent to the database: every SQL statement, as the driver ran it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, event


@contextmanager
def executed_statements(bind: Engine | Connection) -> Iterator[list[str]]:
    """The statements run inside the block, stripped. On SQLite, SQLite's own trace, which also sees
    what the submission path runs on the driver's cursor; on PostgreSQL, SQLAlchemy's cursor events."""
    statements: list[str] = []
    engine = bind.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.strip())

    def trace(dbapi_connection: sqlite3.Connection) -> None:
        dbapi_connection.set_trace_callback(lambda statement: statements.append(statement.strip()))

    if engine.dialect.name != "sqlite":
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)
    elif isinstance(bind, Connection):  # the test suite's connection
        driver = bind.connection.dbapi_connection
        trace(driver)
        try:
            yield statements
        finally:
            driver.set_trace_callback(None)
    else:
        traced: list[sqlite3.Connection] = []

        def on_checkout(dbapi_connection, _record, _proxy):
            trace(dbapi_connection)
            traced.append(dbapi_connection)

        event.listen(engine, "checkout", on_checkout)
        try:
            yield statements
        finally:
            event.remove(engine, "checkout", on_checkout)
            for driver in traced:
                driver.set_trace_callback(None)
