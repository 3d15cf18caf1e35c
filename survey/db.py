"""Database foundation: the declarative base, the Flask-SQLAlchemy handle and the unit of work.

Only :func:`unit_of_work` commits, with one exception. Services open one, add and flush inside it,
and return; a nested call joins the outer unit of work instead of committing early, so one service
call that calls another is still one transaction. Anything raised inside rolls the whole unit back.
The exception is :func:`core_transaction`, the submission hot path's own transaction without the ORM
session; it refuses to run inside a unit of work.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase

# Named constraints, so that migrations (and SQLite batch mode) can address them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

_DEPTH_KEY = "survey_uow_depth"


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Run the block as one transaction: commit on success, roll back on any exception.

    Re-entrant: an inner ``unit_of_work`` joins the outer one and leaves committing to it.
    """
    session = db.session()
    depth = session.info.get(_DEPTH_KEY, 0)
    session.info[_DEPTH_KEY] = depth + 1
    try:
        yield
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH_KEY] = depth


@contextmanager
def core_transaction(single_statement: bool = False) -> Iterator[Connection]:
    """One transaction on a pooled connection, without the ORM session: committed when the block
    ends, rolled back if it raises. For the submission hot path, where the session's bookkeeping
    cost a quarter of a millisecond per response (issue 7).

    It is a transaction of its own, so it may not run inside a :func:`unit_of_work`; a transaction
    the session holds otherwise (reads) is ended first, because on SQLite it would hold the write
    lock this one waits for. ``single_statement``: on PostgreSQL the block runs one statement,
    which is then a transaction by itself (autocommit): one round trip instead of three (BEGIN,
    the statement, COMMIT), as in the ceiling the submission path is measured against.
    """
    if db.session.registry.has():  # else no session was made in this context (making one costs)
        session = db.session()
        if session.info.get(_DEPTH_KEY, 0):
            raise RuntimeError("core_transaction() cannot join a unit_of_work(); it commits on its own.")
        if session.in_transaction():
            session.commit()
    bind = db.engine
    if isinstance(bind, Connection):  # the test suite's connection, whose outer transaction is rolled back
        with bind.begin_nested():
            yield bind
    elif single_statement and bind.dialect.name == "postgresql":
        with bind.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
    else:
        # The pool check-out and check-in stay outside the writers' turn, which is the serial part.
        with bind.connect() as connection, sqlite_writers_queue(bind), connection.begin():
            yield connection


@contextmanager
def driver_cursor(connection: Connection) -> Iterator[Any]:
    """A cursor of the connection's own driver, closed after the block: statements run as written,
    without SQLAlchemy's per-statement work (issue 7). The driver's errors are raised as SQLAlchemy's,
    without the parameters, as any statement's would be (so a failed disk still answers 503). A lost
    connection has the effect SQLAlchemy's own handling gives it (which marks the pool's older
    connections stale through a private call): this connection is discarded, and the pool's waiting
    connections, which predate the loss, are closed with it, so that the next request connects anew.
    """
    dialect = connection.dialect
    driver_error = dialect.loaded_dbapi.Error
    driver_connection = connection.connection.dbapi_connection
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except driver_error as error:
        lost = dialect.is_disconnect(error, driver_connection, cursor)
        if lost and not connection.invalidated:
            connection.engine.dispose()  # the pool's idle connections; this one is still checked out
            connection.invalidate(error)
        raise DBAPIError.instance(
            None, None, error, driver_error, hide_parameters=True, dialect=dialect, connection_invalidated=lost
        ) from error
    finally:
        cursor.close()


@contextmanager
def sqlite_writers_queue(engine: Engine) -> Iterator[None]:
    """On a SQLite file, wait for this writer's turn on an OS file lock beside it (``<file>-writers``).

    SQLite lets one writer in at a time; the others retry after sleeping 1, 2, 5, 10… ms, so two
    workers that meet idle for a millisecond or more, longer than a submission's transaction. The
    kernel wakes a waiter on this lock the moment it is released (SQLite submissions +20–25 % with two
    workers; issue 7). Only :func:`core_transaction` queues here, holding the lock for its short
    transaction alone (nothing it waits for inside can wait for the lock), and the lock is released
    after the COMMIT. Other writers, and databases in memory, rely on SQLite's own wait as before.
    """
    path = sqlite_file(engine)
    if path is None:
        yield
        return
    descriptor = os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def sqlite_file(engine: Engine) -> str | None:
    """The path of the engine's SQLite database file; None for another database or one in memory."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def _open_existing(path: str) -> contextlib.closing[sqlite3.Connection]:
    """A raw connection to the SQLite file ``path``, closed after the block; ``mode=rw``: a file that
    is not there (any more) is an error, never created empty."""
    return contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=rw", uri=True))


def backup_sqlite(engine: Engine, target: Path) -> int:
    """Copy the engine's SQLite database into the new file ``target`` while the app runs; the number
    of responses in the copy.

    SQLite's online backup reads one consistent snapshot, including the pages the write-ahead log
    still holds (a copy of the database file alone can miss the latest responses), and as a WAL
    reader it holds up no submission. The copy is one self-contained file (rollback journal),
    readable only by its owner (mode 600), checked with ``PRAGMA quick_check``; it never replaces an
    existing file (FileExistsError), and a failed copy is removed.
    """
    source_path = sqlite_file(engine)
    if source_path is None:
        raise ValueError("Only a SQLite database file can be copied this way.")
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with (
            _open_existing(source_path) as source,
            contextlib.closing(sqlite3.connect(target, isolation_level=None)) as copy,
        ):
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            check = copy.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise sqlite3.DatabaseError(f"the copy failed its check: {check[:3]}")
            return copy.execute("SELECT count(*) FROM responses").fetchone()[0]
    except BaseException:
        target.unlink(missing_ok=True)
        raise


READ_ONLY = "survey_read_only"


def begin_read_only() -> None:
    """Start the session's next transaction as one that only reads (a long export): on SQLite it
    takes no write lock, so submissions are not held back; on PostgreSQL reads never block writes.
    End it with ``db.session.rollback()``."""
    session = db.session()
    session.rollback()
    session.connection(execution_options={READ_ONLY: True})


@contextmanager
def read_only_transaction() -> Iterator[None]:
    begin_read_only()
    try:
        yield
    finally:
        db.session.rollback()


# A commit appends its pages to the write-ahead log; a checkpoint copies them into the database file
# and syncs both files to disk. SQLite checkpoints inside the COMMIT that takes the log past
# ``wal_autocheckpoint`` pages, so with the default (1,000) a submission waited, holding the writers'
# turn, for a checkpoint every few dozen responses. The app's checkpoints are taken by
# :data:`SQLITE_CHECKPOINTS` instead, on a thread of their own; the raised threshold is only a
# backstop for a process that writes without it.
SQLITE_AUTOCHECKPOINT_PAGES = 10_000
SQLITE_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}",
)

log = logging.getLogger(__name__)


class SqliteCheckpointer:
    """Checkpoints SQLite files on a thread of this process, shortly after a commit asks for one.

    A checkpoint is SQLite's own ``PRAGMA wal_checkpoint(PASSIVE)``: it copies what is committed
    without waiting for, or holding up, readers and writers. Commits within ``delay`` seconds of the
    first share one checkpoint. With ``synchronous=NORMAL`` a commit reaches the disk at the next
    checkpoint, so a response is on disk within a fraction of a second even on a quiet survey
    (with the default threshold, only once a thousand pages had gathered). One thread per process,
    started by the first commit; SQLite releases the GIL while it copies and syncs.
    """

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a thread does not survive a fork

    def _reset(self) -> None:
        self._wanted: set[str] = set()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self.last: dict[str, tuple[int, int, int]] = {}  # path: (busy, log pages, pages checkpointed)

    def request(self, path: str) -> None:
        """Checkpoint ``path`` soon (called as a transaction commits; cheap: no I/O)."""
        with self._condition:
            self._wanted.add(path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._wanted)
            time.sleep(self.delay)  # let the commits of the next moment join this checkpoint
            with self._condition:
                paths, self._wanted = self._wanted, set()
            for path in paths:
                self.last[path] = self.checkpoint(path)

    @staticmethod
    def checkpoint(path: str) -> tuple[int, int, int]:
        """One passive checkpoint of ``path``: (1 if it met a busy lock, log pages, pages copied)."""
        if not os.path.exists(path):  # removed since its commit (a test's temporary database)
            return (0, 0, 0)
        try:
            with _open_existing(path) as connection:
                return connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # the next commit asks again; the backstop threshold remains
            log.warning("SQLite checkpoint of %s failed: %s", path, error)
            return (1, -1, -1)


SQLITE_CHECKPOINTS = SqliteCheckpointer()


def tune_sqlite(engine: Engine) -> None:
    """Apply the embedded-default settings the ceilings report measured (WAL, NORMAL, busy timeout).

    pysqlite's own transaction handling is switched off and ``BEGIN IMMEDIATE`` issued instead, so
    that a writer takes the write lock at the start of its transaction (no lock upgrade deadlocks)
    and SAVEPOINTs work (SQLAlchemy's documented pysqlite recipe). A transaction begun with
    :func:`begin_read_only` is a plain ``BEGIN``: a long export or result table reads a snapshot
    without holding up submissions.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A read-only transaction (begin_read_only) takes no lock: WAL readers never block the writer.
        # On the driver's cursor: a statement through SQLAlchemy cost every submission ~50 function calls.
        read_only = connection.get_execution_options().get(READ_ONLY)
        with driver_cursor(connection) as cursor:
            cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    path = sqlite_file(engine)
    if path is not None:

        @event.listens_for(engine, "commit")
        def _on_commit(connection):
            if not connection.get_execution_options().get(READ_ONLY):
                SQLITE_CHECKPOINTS.request(path)
