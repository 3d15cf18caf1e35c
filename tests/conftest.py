"""Fixtures: every database-backed test runs on SQLite and, when ``SURVEY_TEST_DATABASE_URL`` names
a PostgreSQL server, on PostgreSQL too.

Each run makes databases of its own (a temporary SQLite file; a PostgreSQL database with a random
name, dropped afterwards), builds them with the migrations and seeds the shipped questionnaires.
Each test then runs inside an outer transaction that is rolled back, with the session joining it
through savepoints, so services can commit as they do in production and leave nothing behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from survey import create_app
from survey.db import db
from survey.i18n import compile_catalogs
from survey.questionnaires.services import seed_shipped_questionnaires

PG_ENV = "SURVEY_TEST_DATABASE_URL"
DATABASE_KINDS = ["sqlite", "postgresql"]


def pytest_sessionstart(session: pytest.Session) -> None:
    compile_catalogs()  # the pages' translations are build output; tests must see the current ones


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """An empty database of ``kind`` for the duration of the block; yields its URL."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'survey-{secrets.token_hex(4)}.sqlite3'}"
        return
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (see README)")
    server = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"survey_test_{secrets.token_hex(6)}"
    # NullPool: a fresh connection each time, so a server restart during the block (R6) is harmless.
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# argon2id at a test cost: the production cost would make the role matrix take minutes.
FAST_PASSWORD_HASH = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def make_app(url: str, **config: object) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "PASSWORD_HASH_COST": FAST_PASSWORD_HASH,
            "RATELIMIT_ENABLED": False,  # tests of the limits turn them on
            # The session-wide app outlives the R6 test's PostgreSQL restart: without a pre-ping the
            # next test would meet the one 503 a dead pool gives (production default: off, see config).
            "DB_POOL_PRE_PING": True,
            **config,
        }
    )


def migrate_and_seed(app: Flask) -> None:
    with app.app_context():
        upgrade()
        seed_shipped_questionnaires()
        db.session.remove()


@pytest.fixture(scope="session", params=DATABASE_KINDS)
def database_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(database_kind, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def base_app(database_url: str) -> Iterator[Flask]:
    app = make_app(database_url)
    migrate_and_seed(app)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def real_app(database_kind: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on a database of its own, outside the rolled-back transaction: what commits, commits
    (a submission's own transaction, checkpoints, backups)."""
    with fresh_database(database_kind, tmp_path) as url:
        app = make_app(url)
        migrate_and_seed(app)
        try:
            yield app
        finally:
            with app.app_context():
                db.engine.dispose()


@pytest.fixture
def app(base_app: Flask) -> Iterator[Flask]:
    """The session's app, with everything a test writes rolled back afterwards."""
    with base_app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection  # type: ignore[assignment]
        factory_options = db.session.session_factory.kw
        factory_options["join_transaction_mode"] = "create_savepoint"
        try:
            yield base_app
        finally:
            db.session.remove()
            factory_options.pop("join_transaction_mode", None)
            engines[None] = engine
            outer.rollback()
            connection.close()
            for kept in ("catalogs", "targets", "snapshot_checks", "result_bodies"):
                base_app.extensions["survey"][kept].clear()  # per-process memory of rolled-back rows


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()
