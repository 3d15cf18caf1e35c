"""Faults under a real server (promises R5, R7): a database connection killed in the middle of a
submission leaves no partial response, the client is told to retry, and the next requests succeed."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from tests.factories import dialogue_answers, submission
from tests.responses.test_concurrency import _post, server  # noqa: F401 - the live-server fixture

pytestmark = pytest.mark.slow


def _orphans_and_counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            responses = connection.scalar(text("SELECT count(*) FROM responses"))
            answers = connection.scalar(text("SELECT count(*) FROM answers"))
            empty = connection.scalar(
                text(
                    "SELECT count(*) FROM responses r "
                    "WHERE NOT EXISTS (SELECT 1 FROM answers a WHERE a.response_id = r.id)"
                )
            )
            return responses, answers, empty
    finally:
        engine.dispose()


def test_backend_killed_mid_submission_leaves_no_partial_rows(database_kind, request):
    if database_kind != "postgresql":
        pytest.skip("terminating a backend is a PostgreSQL fault")
    port, url = request.getfixturevalue("server")
    before = _orphans_and_counts(url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    holder = create_engine(url)
    body = submission(answers=dialogue_answers())
    statuses: list[int] = []
    with holder.connect() as blocking:
        transaction = blocking.begin()
        blocking.execute(text("LOCK TABLE answers IN ACCESS EXCLUSIVE MODE"))  # the submit will wait here
        sender = threading.Thread(target=lambda: statuses.append(_post(port, body)))
        sender.start()
        with admin.connect() as connection:
            victim = None
            for _ in range(100):
                victim = connection.scalar(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO answers%'"
                    )
                )
                if victim:
                    break
                time.sleep(0.05)
            assert victim, "the submission never reached the answers insert"
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        transaction.rollback()
    sender.join(timeout=30)
    admin.dispose()
    holder.dispose()

    assert statuses == [503]  # told to retry; nothing was acknowledged
    assert _orphans_and_counts(url) == before  # the response row went with its transaction
    assert _post(port, body) == 201  # the retry succeeds
    statuses = [_post(port, submission(answers=dialogue_answers())) for _ in range(100)]
    assert statuses == [201] * 100
    after = _orphans_and_counts(url)
    assert after[0] == before[0] + 101 and after[2] == before[2] == 0
