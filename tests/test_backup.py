"""``flask survey backup``: a complete, consistent copy of the embedded SQLite database while it serves."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from survey.cli import backup_command
from survey.db import SQLITE_CHECKPOINTS, db
from tests.conftest import fresh_database, make_app, migrate_and_seed
from tests.factories import dialogue_answers, submission
from tests.live import URL


@pytest.fixture
def own_app(database_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    # No checkpoints: what is committed stays in the write-ahead log, as between two checkpoints.
    monkeypatch.setattr(SQLITE_CHECKPOINTS, "request", lambda path: None)
    with fresh_database(database_kind, tmp_path) as url:
        app = make_app(url)
        migrate_and_seed(app)
        try:
            yield app
        finally:
            with app.app_context():
                db.engine.dispose()


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


def test_a_backup_holds_what_the_write_ahead_log_holds(own_app: Flask, database_kind: str, tmp_path: Path):
    if database_kind != "sqlite":
        pytest.skip("a SQLite file's backup")
    client = own_app.test_client()
    for _ in range(3):
        assert client.post(URL, json=submission(answers=dialogue_answers())).status_code == 201
    with own_app.app_context():
        live = Path(db.engine.url.database)
    naive = tmp_path / "naive.sqlite3"
    shutil.copyfile(live, naive)  # the file alone, as a plain copy while the service runs would take it
    assert _counts(naive) != (3, 36)

    target = tmp_path / "backup.sqlite3"
    result = own_app.test_cli_runner().invoke(backup_command, [str(target)])
    assert result.exit_code == 0, result.output
    assert "backed up 3 responses" in result.output
    assert _counts(target) == (3, 36)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # answers are personal data
    with contextlib.closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert not Path(f"{target}-wal").exists()

    before = target.read_bytes()
    again = own_app.test_cli_runner().invoke(backup_command, [str(target)])
    assert again.exit_code != 0 and "exists" in again.output
    assert target.read_bytes() == before  # never replaced


def test_a_backup_of_postgresql_points_to_pg_dump(own_app: Flask, database_kind: str, tmp_path: Path):
    if database_kind != "postgresql":
        pytest.skip("the refusal is for PostgreSQL")
    target = tmp_path / "backup.sqlite3"
    result = own_app.test_cli_runner().invoke(backup_command, [str(target)])
    assert result.exit_code != 0 and "pg_dump" in result.output
    assert not target.exists()
