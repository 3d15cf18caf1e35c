"""What a block of code sent to the database: every SQL statement, as the driver ran it.

Both databases are traced at the driver, below SQLAlchemy, so statements the submission path runs on
the driver's own cursor are seen too: on SQLite by SQLite's own trace; on PostgreSQL by a psycopg
cursor class that records each statement, preceded by the ``BEGIN`` psycopg sends first when the
connection is not in autocommit and no transaction is open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event


def _recording_cursor(statements: list[str]) -> type[psycopg.Cursor]:
    class RecordingCursor(psycopg.Cursor):
        def _record(self, query: Any) -> None:
            connection = self.connection
            if not connection.autocommit and connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                statements.append("BEGIN")
            statements.append(str(query).strip())

        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._record(query)
            return super().execute(query, *args, **kwargs)

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._record(query)
            return super().executemany(query, *args, **kwargs)

    return RecordingCursor


def _tracer(engine: Engine, statements: list[str]) -> tuple[Callable[[Any], None], Callable[[Any], None]]:
    """(start, stop) tracing one driver connection of ``engine``."""
    if engine.dialect.name == "sqlite":

        def start(driver: sqlite3.Connection) -> None:
            driver.set_trace_callback(lambda statement: statements.append(statement.strip()))

        def stop(driver: sqlite3.Connection) -> None:
            driver.set_trace_callback(None)

        return start, stop
    recording = _recording_cursor(statements)
    factories: dict[int, Any] = {}

    def start_psycopg(driver: psycopg.Connection) -> None:
        factories.setdefault(id(driver), driver.cursor_factory)
        driver.cursor_factory = recording

    def stop_psycopg(driver: psycopg.Connection) -> None:
        driver.cursor_factory = factories[id(driver)]

    return start_psycopg, stop_psycopg


@contextmanager
def executed_statements(bind: Engine | Connection) -> Iterator[list[str]]:
    """The statements run inside the block, stripped, on ``bind``'s connections."""
    statements: list[str] = []
    start, stop = _tracer(bind.engine, statements)
    if isinstance(bind, Connection):  # the test suite's connection
        driver = bind.connection.dbapi_connection
        start(driver)
        try:
            yield statements
        finally:
            stop(driver)
        return
    traced: list[Any] = []

    def on_checkout(dbapi_connection, _record, _proxy):
        start(dbapi_connection)
        traced.append(dbapi_connection)

    event.listen(bind, "checkout", on_checkout)
    try:
        yield statements
    finally:
        event.remove(bind, "checkout", on_checkout)
        for driver in traced:
            stop(driver)
