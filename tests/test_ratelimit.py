"""Rate limits on stored responses, keyed by a daily HMAC of the address, never the address itself."""

from __future__ import annotations

import socket

import pytest
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from tests.factories import dialogue_answers, submission

URL = "/api/v1/questionnaires/dialogue_2022/responses"
MARKER_IP = "203.0.113.77"


def _redis_up() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.fixture(params=["memory", "redis"])
def limited(app, monkeypatch, request):
    if request.param == "redis":
        if not _redis_up():
            pytest.skip("no Redis on 127.0.0.1:6379")
        storage = storage_from_string("redis://127.0.0.1:6379/15")
    else:
        storage = storage_from_string("memory://")
    storage.reset()
    monkeypatch.setitem(app.extensions["survey"], "ratelimit", MovingWindowRateLimiter(storage))
    monkeypatch.setitem(app.config, "RATELIMIT_ENABLED", True)
    monkeypatch.setitem(app.config, "SUBMISSION_RATE_LIMIT", "3 per 10 minutes")
    yield storage
    storage.reset()


def post(client, body, ip=MARKER_IP, **headers):
    return client.post(URL, json=body, environ_base={"REMOTE_ADDR": ip}, headers=headers)


def test_stored_responses_are_limited_per_client(client, limited):
    bodies = [submission(answers=dialogue_answers()) for _ in range(4)]
    assert [post(client, b).status_code for b in bodies[:3]] == [201, 201, 201]
    refused = post(client, bodies[3])
    assert refused.status_code == 429
    assert refused.json["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    assert post(client, bodies[3], ip="198.51.100.9").status_code == 201  # another client


def test_invalid_and_replayed_submissions_do_not_count(client, limited):
    body = submission(answers=dialogue_answers())
    assert post(client, body).status_code == 201
    for _ in range(5):
        assert post(client, submission(answers={"consent_confirm": "no"})).status_code == 422
    assert post(client, body).status_code == 200
    assert post(client, submission(answers=dialogue_answers())).status_code == 201


def test_forged_forwarded_for_does_not_reset_the_count(client, limited):
    for number in range(3):
        assert (
            post(client, submission(answers=dialogue_answers()), X_Forwarded_For=f"10.0.0.{number}").status_code == 201
        )
    assert post(client, submission(answers=dialogue_answers()), X_Forwarded_For="10.9.9.9").status_code == 429


def test_the_address_never_reaches_the_counter_store(client, limited):
    for _ in range(4):
        post(client, submission(answers=dialogue_answers()))
    if hasattr(limited, "storage"):  # memory
        keys = " ".join(map(str, limited.storage.keys())) + " ".join(map(str, getattr(limited, "events", {}).keys()))
    else:  # redis
        keys = " ".join(k.decode() for k in limited.get_connection().keys("*"))
    assert keys, "nothing was counted"
    assert MARKER_IP not in keys and "203.0.113" not in keys
