"""A submission's own transaction on a real engine.

The rest of the suite runs each test inside one rolled-back connection, where the submission's
transaction is a savepoint; here the app has a database of its own, so what production does is
what runs: autocommit for the single statement on PostgreSQL, BEGIN IMMEDIATE … COMMIT on SQLite,
and a transaction of its own next to whatever the ORM session holds.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.pool import NullPool

from survey.db import core_transaction, db, read_only_transaction, unit_of_work
from survey.responses.models import Answer, Response
from survey.responses.services import submit_response
from tests.conftest import make_app
from tests.factories import dialogue_answers, submission
from tests.live import URL
from tests.statements import executed_statements


def _wait_until(condition: Callable[[], bool], seconds: float = 5) -> bool:
    """Poll ``condition`` every 50 ms for up to ``seconds``; whether it came true."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        threading.Event().wait(0.05)
    return condition()


def stored(app: Flask) -> tuple[int, int]:
    with app.app_context():
        counts = (
            db.session.scalar(select(func.count()).select_from(Response)),
            db.session.scalar(select(func.count()).select_from(Answer)),
        )
        db.session.remove()
    return counts  # type: ignore[return-value]


def test_a_submission_writes_in_one_statement_without_begin_on_postgresql(real_app):
    client = real_app.test_client()
    assert client.post(URL, json=submission(answers=dialogue_answers())).status_code == 201  # warm the caches
    with real_app.app_context():
        engine = db.engine
    through_sqlalchemy: list[str] = []  # what SQLAlchemy's statement machinery ran

    def record(conn, cursor, statement, parameters, context, executemany):
        through_sqlalchemy.append(statement.strip())

    event.listen(engine, "before_cursor_execute", record)
    try:
        with executed_statements(engine) as executed:
            assert client.post(URL, json=submission(answers=dialogue_answers())).status_code == 201
    finally:
        event.remove(engine, "before_cursor_execute", record)
    writes = [statement for statement in executed if statement.upper().startswith(("INSERT", "WITH", "BEGIN"))]
    # Run by the driver's cursor, without SQLAlchemy's statement machinery (issue 7).
    assert not [statement for statement in through_sqlalchemy if statement in writes]
    if engine.dialect.name == "postgresql":
        assert len(writes) == 1 and writes[0].startswith("WITH")  # one statement, its own transaction
    else:
        # the response, its answer profile (if new) and its 12 answer rows, inside one BEGIN IMMEDIATE … COMMIT
        begin, commit = executed.index("BEGIN IMMEDIATE"), executed.index("COMMIT")
        tables = [statement.split()[2] for statement in executed if statement.startswith("INSERT")]
        inside = [statement.split()[2] for statement in executed[begin:commit] if statement.startswith("INSERT")]
        assert tables == inside == ["responses", "answer_profiles", *["answers"] * 12]
    assert stored(real_app) == (2, 24)


def test_a_transaction_the_session_holds_does_not_block_the_submission(real_app):
    """The web form reads through the ORM before it submits; on SQLite that read holds the write lock."""
    with real_app.test_request_context("/"):
        db.session.execute(text("SELECT count(*) FROM questionnaires"))
        assert db.session().in_transaction()
        assert submit_response("dialogue_2022", submission(answers=dialogue_answers()), channel="web").created
        assert not db.session().in_transaction()
    assert stored(real_app)[0] == 1


def test_a_failure_inside_leaves_nothing(real_app):
    with real_app.app_context(), pytest.raises(RuntimeError, match="injected"), core_transaction() as connection:
        connection.execute(text("UPDATE questionnaires SET status = 'closed'"))
        raise RuntimeError("injected")
    with real_app.app_context():
        assert set(db.session.scalars(text("SELECT status FROM questionnaires"))) == {"open"}


def test_it_refuses_to_join_a_unit_of_work(real_app):
    with real_app.app_context(), unit_of_work(), pytest.raises(RuntimeError, match="cannot join"), core_transaction():
        pass


def _write_from_elsewhere(url: str) -> str:
    """Take SQLite's write lock from another connection, waiting at most 0.5 s; what happened."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0.5, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE questionnaires SET status = status")
        connection.execute("COMMIT")
        return "written"
    except sqlite3.OperationalError as error:
        return str(error)
    finally:
        connection.close()


def test_reading_for_exports_and_staff_results_leaves_submissions_free_on_sqlite(real_app, monkeypatch):
    """A long export or result count reads a snapshot (plain BEGIN); only writers take BEGIN IMMEDIATE."""
    import survey.results.services as results

    with real_app.app_context():
        url = str(db.engine.url)
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
        with read_only_transaction():
            db.session.execute(text("SELECT count(*) FROM responses"))
            assert _write_from_elsewhere(url) == "written"
        with unit_of_work():
            db.session.execute(text("SELECT count(*) FROM responses"))
            assert _write_from_elsewhere(url) == "database is locked"  # a writer does hold it

        seen: list[str] = []
        counting = results.tables_for

        def tables_for(*args: Any, **kwargs: Any) -> Any:
            found = counting(*args, **kwargs)
            seen.append(_write_from_elsewhere(url))  # a submission arriving while staff results count
            return found

        monkeypatch.setattr(results, "tables_for", tables_for)
        assert results.staff_results("dialogue_2022", "community")["questions"]
        assert seen == ["written"]


def test_taking_a_snapshot_counts_without_the_write_lock_on_sqlite(real_app, monkeypatch):
    import survey.results.services as results
    from survey.questionnaires.services import get_questionnaire

    seen: list[str] = []
    counting = results.compute_public

    def compute_public(*args: Any, **kwargs: Any) -> Any:
        seen.append(_write_from_elsewhere(url))  # a submission arriving while the snapshot counts
        return counting(*args, **kwargs)

    monkeypatch.setattr(results, "compute_public", compute_public)
    with real_app.app_context():
        url = str(db.engine.url)
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
        assert submit_response("dialogue_2022", submission(answers=dialogue_answers()), channel="api").created
        snapshot = results.refresh_snapshot(get_questionnaire("dialogue_2022"), force=True)
        assert snapshot is not None and snapshot.responses == 1
    assert seen == ["written"]


def test_sqlite_submissions_wait_their_turn_on_the_writers_lock(real_app):
    """Another writer's turn (the OS lock beside the file) holds the submission back whole; when it
    ends, the submission goes in at once, without SQLite's sleeping retries."""
    with real_app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the writers' queue is SQLite's")
        lock_path = f"{db.engine.url.database}-writers"
    client = real_app.test_client()
    assert client.post(URL, json=submission(answers=dialogue_answers())).status_code == 201  # warm the caches
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    statuses: list[int] = []
    waiting = threading.Thread(
        target=lambda: statuses.append(client.post(URL, json=submission(answers=dialogue_answers())).status_code)
    )
    try:
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and stored(real_app) == (1, 12)  # queued: nothing of it written
    finally:
        os.close(descriptor)
    waiting.join(10)
    assert statuses == [201] and stored(real_app) == (2, 24)


def test_a_sqlite_write_lock_held_too_long_elsewhere_answers_503_and_stores_nothing(real_app):
    """Another program holds SQLite's write lock past the busy timeout: BEGIN IMMEDIATE gives up, and
    the respondent is told to retry (503, Retry-After), not shown a server error."""
    with real_app.app_context():
        engine = db.engine
        if engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
        engine.dispose()  # new connections wait 0.2 s for a lock instead of 10 s

        @event.listens_for(engine, "connect")
        def _short_wait(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA busy_timeout=200")

    holder = sqlite3.connect(engine.url.database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        answer = real_app.test_client().post(URL, json=submission(answers=dialogue_answers()))
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json["code"] == "service_unavailable"
    assert stored(real_app) == (0, 0)


def test_sqlite_commits_are_checkpointed_by_a_thread_outside_the_writers_turn(real_app):
    """A submission's COMMIT only appends to the write-ahead log; the checkpointer thread copies it
    into the database file soon after, while another writer holds the writers' lock (it never queues
    behind submissions, and they never wait for its disk syncs)."""
    from survey.db import SQLITE_AUTOCHECKPOINT_PAGES, SQLITE_CHECKPOINTS

    with real_app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write-ahead log is SQLite's")
        path = db.engine.url.database
        with db.engine.connect() as connection:  # the backstop: no checkpoint inside a submission's COMMIT
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SQLITE_AUTOCHECKPOINT_PAGES
    SQLITE_CHECKPOINTS.last.pop(path, None)
    descriptor = os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert real_app.test_client().post(URL, json=submission(answers=dialogue_answers())).status_code == 201
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # the next writer's turn
        _wait_until(lambda: path in SQLITE_CHECKPOINTS.last)
    finally:
        os.close(descriptor)
    busy, log_pages, copied = SQLITE_CHECKPOINTS.last[path]
    assert busy == 0 and log_pages > 0 and copied == log_pages  # every committed page is in the file
    assert stored(real_app) == (1, 12)


def test_a_failed_sqlite_checkpoint_is_logged_and_a_removed_file_is_not_made_again(tmp_path, caplog):
    from survey.db import SqliteCheckpointer

    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"not a database, " * 512)
    assert SqliteCheckpointer.checkpoint(str(damaged)) == (1, -1, -1)
    assert "checkpoint" in caplog.text and damaged.read_bytes() == b"not a database, " * 512
    removed = tmp_path / "removed.sqlite3"
    assert SqliteCheckpointer.checkpoint(str(removed)) == (0, 0, 0)
    assert not removed.exists()


def test_a_forked_worker_checkpoints_on_a_thread_of_its_own(tmp_path):
    """gunicorn forks its workers; the parent's checkpointer thread does not exist in a child, so the
    child starts its own (without that, a worker forked after a commit would never checkpoint)."""

    from survey.db import SQLITE_CHECKPOINTS

    path = str(tmp_path / "forked.sqlite3")
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.close()  # no SQLite connection may cross a fork
    SQLITE_CHECKPOINTS.last.pop(path, None)
    SQLITE_CHECKPOINTS.request(path)
    # the parent's thread has run (and is not inside a checkpoint at the fork)
    _wait_until(lambda: path in SQLITE_CHECKPOINTS.last)
    pid = os.fork()
    if pid == 0:  # the child: write, ask, and report by exit status whether a checkpoint came
        status = 1
        try:
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("PRAGMA wal_autocheckpoint=0")
            connection.execute("INSERT INTO t VALUES (1)")
            SQLITE_CHECKPOINTS.last.pop(path, None)
            SQLITE_CHECKPOINTS.request(path)
            status = 0 if _wait_until(lambda: SQLITE_CHECKPOINTS.last.get(path, (1, 0, 0))[0] == 0) else 1
        finally:
            os._exit(status)
    for _ in range(200):  # a child stuck on a lock its parent's thread held at the fork never ends
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child never checkpointed (it hung)")
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_lost_database_connection_renews_the_whole_pool_at_once(real_app):
    """A submission that meets a dead connection (PostgreSQL restarted, say) answers 503, and the next
    one gets a new connection, not another dead one from the pool (promise R6; config's DB_POOL_*)."""
    url = real_app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        pytest.skip("a lost connection is PostgreSQL's (SQLite's connections are files)")
    app = make_app(url, DB_POOL_PRE_PING=False)  # production's default: no round trip per request
    client = app.test_client()
    try:
        assert client.post(URL, json=submission(answers=dialogue_answers())).status_code == 201
        with app.app_context():
            engine = db.engine
            idle = [engine.connect() for _ in range(3)]  # three connections waiting in the pool
            for connection in idle:
                connection.close()
        admin = create_engine(url, poolclass=NullPool)
        with admin.connect() as connection:  # then every connection of the app dies
            killed = connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert killed >= 3  # and any the fixture holds
        lost = client.post(URL, json=submission(answers=dialogue_answers()))
        assert lost.status_code == 503 and lost.headers["Retry-After"]
        statuses = [client.post(URL, json=submission(answers=dialogue_answers())).status_code for _ in range(3)]
        assert statuses == [201] * 3
    finally:
        with app.app_context():
            db.engine.dispose()
    assert stored(real_app) == (4, 48)
