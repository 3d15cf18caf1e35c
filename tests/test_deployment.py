"""Two app servers behind one PostgreSQL and one Redis keep the promises together (issue 8, item 6):
a submission sent to both is stored once, and a client's rate limit holds across both."""

from __future__ import annotations

import socket
import threading
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import fresh_database
from tests.factories import dialogue_answers, submission
from tests.live import gunicorn, post, prepare_database

REDIS_DB = "redis://127.0.0.1:6379/13"


def _redis():
    import redis

    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", 6379)) != 0:
            pytest.skip("no Redis on 127.0.0.1:6379")
    return redis.Redis.from_url(REDIS_DB)


def test_two_servers_share_idempotency_and_rate_limits(database_kind, tmp_path):
    if database_kind != "postgresql":
        pytest.skip("the production pairing is PostgreSQL with Redis")
    store = _redis()
    store.flushdb()
    with fresh_database(database_kind, tmp_path) as url:
        environment = prepare_database(
            url,
            SURVEY_RATELIMIT_ENABLED="true",
            SURVEY_RATELIMIT_STORAGE_URI=REDIS_DB,
            SURVEY_SUBMISSION_RATE_LIMIT="3 per 10 minutes",
        )
        with (
            gunicorn(environment, workers=2, threads=4) as first,
            gunicorn(environment, workers=2, threads=4) as second,
        ):
            body = submission(answers=dialogue_answers())
            barrier = threading.Barrier(10)
            statuses: list[int] = []

            def send(port: int) -> None:
                barrier.wait()
                statuses.append(post(port, body))

            threads = [threading.Thread(target=send, args=(port,)) for port in [first, second] * 5]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            counts = Counter(statuses)
            assert counts[201] == 1 and set(counts) <= {200, 201}, counts

            # One stored response spent one of the client's three; two more, on either server.
            assert post(first, submission(answers=dialogue_answers())) == 201
            assert post(second, submission(answers=dialogue_answers())) == 201
            assert post(first, submission(answers=dialogue_answers())) == 429
            assert post(second, submission(answers=dialogue_answers())) == 429

        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM responses")) == 3
        engine.dispose()
    keys = b" ".join(store.keys("*"))
    assert keys and b"127.0.0.1" not in keys
    store.flushdb()
