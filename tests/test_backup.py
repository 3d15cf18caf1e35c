"""``flask survey backup``: a complete, consistent copy of the embedded SQLite database while it serves."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from flask import Flask

from survey.cli import backup_command
from survey.db import db
from tests.conftest import make_app
from tests.factories import dialogue_answers, submission
from tests.live import URL


def _counts(path: Path) -> tuple[int, int] | None:
    """(responses, answers) in a SQLite file, None if it has no such tables."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        try:
            return (
                connection.execute("SELECT count(*) FROM responses").fetchone()[0],
                connection.execute("SELECT count(*) FROM answers").fetchone()[0],
            )
        except sqlite3.OperationalError:
            return None


def test_a_backup_holds_what_the_write_ahead_log_holds(real_app: Flask, database_kind: str, tmp_path: Path):
    if database_kind != "sqlite":
        pytest.skip("a SQLite file's backup")
    with real_app.app_context():
        live = Path(db.engine.url.database)
    # A reader on an older snapshot (a long export, say): no checkpoint may copy newer pages into the
    # file while it reads, so the responses below stay in the write-ahead log only.
    with contextlib.closing(sqlite3.connect(live, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM responses").fetchone() == (0,)
        client = real_app.test_client()
        sent = [submission(answers=dialogue_answers()) for _ in range(3)]
        for body in sent:
            assert client.post(URL, json=body).status_code == 201
        naive = tmp_path / "naive.sqlite3"
        shutil.copyfile(live, naive)  # the file alone, as a plain copy while the service runs takes it
        assert _counts(naive) in (None, (0, 0))  # no responses (or not even their table yet)

        target = tmp_path / "backup.sqlite3"
        result = real_app.test_cli_runner().invoke(backup_command, [str(target)])
        reader.execute("ROLLBACK")
    assert result.exit_code == 0, result.output
    assert "backed up 3 responses" in result.output
    assert _counts(target) == (3, 36)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # answers are personal data
    with contextlib.closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert not Path(f"{target}-wal").exists()

    before = target.read_bytes()
    again = real_app.test_cli_runner().invoke(backup_command, [str(target)])
    assert again.exit_code != 0 and "exists" in again.output
    assert target.read_bytes() == before  # never replaced

    # Restoring, as the README says: the service stopped, its log files gone, the copy in place.
    with real_app.app_context():
        db.engine.dispose()
    for leftover in (Path(f"{live}-wal"), Path(f"{live}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(target, live)
    restored = make_app(f"sqlite:///{live}").test_client()
    assert restored.post(URL, json=sent[0]).status_code == 200  # a resend is still recognised
    assert restored.post(URL, json=submission(answers=dialogue_answers())).status_code == 201


def test_a_backup_of_postgresql_points_to_pg_dump(real_app: Flask, database_kind: str, tmp_path: Path):
    if database_kind != "postgresql":
        pytest.skip("the refusal is for PostgreSQL")
    target = tmp_path / "backup.sqlite3"
    result = real_app.test_cli_runner().invoke(backup_command, [str(target)])
    assert result.exit_code != 0 and "pg_dump" in result.output
    assert not target.exists()


def test_a_backup_of_one_response_says_so_in_the_singular(real_app: Flask, database_kind: str, tmp_path: Path):
    if database_kind != "sqlite":
        pytest.skip("a SQLite file's backup")
    assert real_app.test_client().post(URL, json=submission(answers=dialogue_answers())).status_code == 201
    result = real_app.test_cli_runner().invoke(backup_command, [str(tmp_path / "one.sqlite3")])
    assert result.exit_code == 0, result.output
    assert f"backed up 1 response to {tmp_path / 'one.sqlite3'}" in result.output
