"""Idempotency under real concurrency: a gunicorn server with several workers, threads released
together by a barrier, on a database of its own (PostgreSQL proves it; SQLite must hold too)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, func, select

from survey.responses.models import Answer, Response
from tests.conftest import fresh_database
from tests.factories import dialogue_answers, submission
from tests.live import URL, gunicorn, in_threads, post, prepare_database

# dialogue_answers(): 10 questions answered, two of them (a multiple choice, a ranking) with two values
ROWS_PER_RESPONSE = 12


@pytest.fixture(scope="module")
def server(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """gunicorn (3 workers x 8 threads) serving a freshly migrated and seeded database."""
    with fresh_database(database_kind, tmp_path_factory.mktemp("live")) as url:
        environment = prepare_database(url)  # rate limits off: hundreds of responses from one address
        with gunicorn(environment) as port:
            yield port, url


def _stored(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return (
                connection.scalar(select(func.count()).select_from(Response)),
                connection.scalar(select(func.count()).select_from(Answer)),
            )
    finally:
        engine.dispose()


def _together(bodies: list[dict], port: int) -> list[int]:
    """POST every body from its own thread, all released at the same instant."""
    return in_threads([lambda body=body: post(port, body) for body in bodies], together=True)


def test_twenty_identical_concurrent_submissions_store_one(server):
    port, url = server
    before = _stored(url)
    body = submission(answers=dialogue_answers())
    statuses = _together([body] * 20, port)
    counts = Counter(statuses)
    assert set(counts) <= {201, 200}, counts
    assert counts[201] == 1, counts
    after = _stored(url)
    assert after[0] - before[0] == 1
    answers_per_response = after[1] - before[1]

    conflicting = {**body, "language": "sq"}
    assert post(port, conflicting) == 409
    assert _stored(url) == after
    assert answers_per_response == ROWS_PER_RESPONSE


def test_five_hundred_distinct_concurrent_submissions_store_five_hundred(server):
    """Promise R3: 50 threads x 10 submissions, 500 distinct ids: 0 lost, 0 duplicated, 0 errors."""
    port, url = server
    before = _stored(url)
    bodies = [submission(answers=dialogue_answers()) for _ in range(500)]
    statuses = []
    for batch in range(0, 500, 50):  # 10 waves of 50 threads released together
        statuses += _together(bodies[batch : batch + 50], port)
    assert Counter(statuses) == {201: 500}
    after = _stored(url)
    assert after[0] - before[0] == 500
    assert after[1] - before[1] == 500 * ROWS_PER_RESPONSE


def test_one_participation_code_raced_by_ten_submitters_is_spent_once(database_kind, tmp_path):
    """Ten different responses with the same code at the same instant: one is stored, nine refused."""
    from survey.db import db
    from tests.conftest import make_app, migrate_and_seed

    with fresh_database(database_kind, tmp_path) as url:
        app = make_app(url)
        migrate_and_seed(app)
        made = app.test_cli_runner().invoke(args=["survey", "codes", "dialogue_2022", "-n", "1"])
        code = made.stdout.splitlines()[1]
        statuses: list[int] = []
        barrier = threading.Barrier(10)

        def send() -> None:
            client = app.test_client()
            body = submission(answers=dialogue_answers(), participation_code=code)
            barrier.wait()
            statuses.append(client.post(URL, json=body).status_code)

        threads = [threading.Thread(target=send) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert Counter(statuses) == {201: 1, 422: 9}
        assert _stored(url)[0] == 1
        with app.app_context():
            db.engine.dispose()
