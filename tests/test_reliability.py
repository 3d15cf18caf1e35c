"""Reliability promises proved against real servers and databases:

- R4: a response lost after the commit (a proxy drops the answer, or the client hangs up), then
  retried with the same ``submission_id``: a 200 replay with the same receipt, one row stored.
- R9: requests beyond the connection pool wait at most the pool timeout, then get 503 with
  ``Retry-After`` (never a 500), write nothing, and service resumes once connections are free.
- R13: the backup and restore drill of ``docs/deployment.md``: ``pg_dump -Fc``, ``pg_restore`` into
  a new database, and the restored one has the same rows, public results and exports.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from survey.config import engine_options
from survey.db import db
from survey.responses.services import submit_response
from tests.conftest import fresh_database, make_app, migrate_and_seed
from tests.factories import dialogue_answers, submission
from tests.live import URL, gunicorn, in_threads, prepare_database, stored_counts
from tests.responses.test_concurrency import ROWS_PER_RESPONSE, server  # noqa: F401 - the live-server fixture
from tests.results.test_results_api import fill
from tests.staff import make_staff

pytestmark = pytest.mark.slow

CODE = "dialogue_2022"


def post(port: int, body: dict[str, Any], path: str = URL) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` as JSON; the status, headers and body of the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw_request(body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def read_request(sock: socket.socket) -> bytes:
    """One whole HTTP request (headers and a Content-Length body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the client went away before sending its request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def hang_up(sock: socket.socket) -> None:
    """Close abruptly (RST), as a proxy or a phone losing its network does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def through_a_dropping_proxy(port: int, body: dict[str, Any]) -> tuple[int, bytes, str]:
    """Send ``body`` through a one-shot proxy that passes the request on, reads the server's whole
    answer (so the server has committed and answered) and then drops the client's connection
    without forwarding a byte. Returns the status and body the server sent, and what the client saw."""
    upstream: dict[str, Any] = {}
    listener = socket.create_server(("127.0.0.1", 0))

    def proxy() -> None:
        client, _address = listener.accept()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as server_side:
                server_side.sendall(read_request(client))
                answer = http.client.HTTPResponse(server_side)
                answer.begin()
                upstream["status"], upstream["body"] = answer.status, answer.read()
                answer.close()
        finally:
            hang_up(client)

    thread = threading.Thread(target=proxy)
    thread.start()
    connection = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=30)
    try:
        connection.request("POST", URL, json.dumps(body), {"Content-Type": "application/json"})
        connection.getresponse()
        seen = "an answer"
    except (http.client.RemoteDisconnected, ConnectionError) as error:
        seen = type(error).__name__
    finally:
        connection.close()
        thread.join(timeout=30)
        listener.close()
    return upstream["status"], upstream["body"], seen


# -- R4: the answer lost after the commit -------------------------------------------------------------------


def test_a_response_lost_after_the_commit_is_replayed_on_retry(database_kind, request):
    """The proxy dropped the 201: the client retries with the same id and gets the same receipt as a 200."""
    port, url = request.getfixturevalue("server")
    before = stored_counts(url)
    body = submission(answers=dialogue_answers())
    status, sent_body, seen = through_a_dropping_proxy(port, body)
    assert status == 201  # the server committed and answered ...
    assert seen in ("RemoteDisconnected", "ConnectionResetError")  # ... and the client never saw it
    assert stored_counts(url, body["submission_id"])[0] == 1

    retried, _headers, retry_body = post(port, body)
    assert retried == 200, retry_body
    assert json.loads(retry_body) == json.loads(sent_body)  # the very receipt the client missed
    assert json.loads(retry_body)["submission_id"] == body["submission_id"]
    after = stored_counts(url)
    assert after[0] == before[0] + 1 and after[1] == before[1] + ROWS_PER_RESPONSE and after[2] == 0
    assert post(port, submission(answers=dialogue_answers()))[0] == 201  # the server carries on
    print(f"R4: the server sent {status}, the client saw {seen}, its retry got {retried}")


def test_a_client_that_hangs_up_and_retries_stores_one_response(database_kind, request):
    """The client sends and hangs up (once right away, once after the commit) without reading; its
    retry is a 201 if nothing had been stored and a 200 replay otherwise; never two rows."""
    port, url = request.getfixturevalue("server")
    before = stored_counts(url)
    statuses = []
    for wait_for_commit in (False, True):
        body = submission(answers=dialogue_answers())
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(raw_request(body))
        if wait_for_commit:
            deadline = time.monotonic() + 10
            while stored_counts(url, body["submission_id"])[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert stored_counts(url, body["submission_id"])[0] == 1
        hang_up(sock)
        time.sleep(0.2)  # a retry racing the original is fine too: one of them stores it (R2)
        retried, _headers, first_receipt = post(port, body)
        assert retried == 200 if wait_for_commit else retried in (200, 201)
        replay, _headers, replay_receipt = post(port, body)
        assert replay == 200 and replay_receipt == first_receipt
        assert stored_counts(url, body["submission_id"])[0] == 1
        statuses.append(retried)
    after = stored_counts(url)
    assert after[0] == before[0] + 2 and after[1] == before[1] + 2 * ROWS_PER_RESPONSE and after[2] == 0
    print(f"R4: retries after hanging up at once and after the commit got {statuses}")


# -- R9: beyond the connection pool ------------------------------------------------------------------------

POOL_SIZE = 2
POOL_TIMEOUT = 1


@contextmanager
def small_pool_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """gunicorn (1 worker x 8 threads) whose pool holds POOL_SIZE connections, no overflow, and whose
    requests wait POOL_TIMEOUT seconds for one (``SURVEY_DB_POOL_TIMEOUT``, read by survey.config)."""
    with fresh_database("postgresql", tmp_path) as url:
        options = engine_options(url, {"DB_POOL_PRE_PING": False, "DB_POOL_TIMEOUT": POOL_TIMEOUT})
        options |= {"pool_size": POOL_SIZE, "max_overflow": 0}
        environment = prepare_database(
            url, SURVEY_DB_POOL_TIMEOUT=str(POOL_TIMEOUT), SURVEY_SQLALCHEMY_ENGINE_OPTIONS=json.dumps(options)
        )
        with gunicorn(environment, workers=1, threads=8) as port:
            yield port, url


def blocked_inserts(admin: Engine) -> int:
    with admin.connect() as connection:
        return connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO answers%'"
            )
        )


def committed_responses(url: str) -> int:
    """Responses visible to others (``answers`` cannot be counted while the test holds its lock)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SET lock_timeout = '5s'"))
            return connection.scalar(text("SELECT count(*) FROM responses"))
    finally:
        engine.dispose()


def timed_post(port: int, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
    start = time.monotonic()
    status, headers, answer = post(port, body)
    return status, headers, answer, time.monotonic() - start


def timed_health(port: int) -> tuple[int, float]:
    start = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status, time.monotonic() - start
    finally:
        connection.close()


def test_requests_beyond_the_pool_get_503_after_the_pool_timeout(database_kind, tmp_path):
    """Both pooled connections stuck in an insert (a table lock): three more submissions and /health
    wait the pool timeout, get 503 + Retry-After and write nothing; once freed, everything succeeds."""
    if database_kind != "postgresql":
        pytest.skip("a PostgreSQL connection pool (SQLite connections are files, not a pool)")
    with small_pool_server(tmp_path) as (port, url):
        assert post(port, submission(answers=dialogue_answers()))[0] == 201  # warm: the pool is in use
        before = stored_counts(url)
        admin = create_engine(url, poolclass=NullPool)
        holder = create_engine(url, poolclass=NullPool)
        busy = [submission(answers=dialogue_answers()) for _ in range(POOL_SIZE)]
        beyond = [submission(answers=dialogue_answers()) for _ in range(3)]
        busy_results: list[Any] = []
        busy_calls = [lambda body=body: post(port, body) for body in busy]
        holding = threading.Thread(target=lambda: busy_results.extend(in_threads(busy_calls)))
        with holder.connect() as blocking:
            transaction = blocking.begin()
            blocking.execute(text("LOCK TABLE answers IN ACCESS EXCLUSIVE MODE"))  # inserts wait here
            holding.start()
            deadline = time.monotonic() + 10
            while blocked_inserts(admin) < POOL_SIZE and time.monotonic() < deadline:
                time.sleep(0.05)
            assert blocked_inserts(admin) == POOL_SIZE, "every pooled connection should be inside an insert"

            overflow = in_threads([lambda body=body: timed_post(port, body) for body in beyond])
            health, health_wait = timed_health(port)
            assert committed_responses(url) == before[0]  # the waiting ones wrote nothing, the busy ones not yet
            transaction.rollback()
        holding.join(timeout=30)
        admin.dispose()
        holder.dispose()

        waits = [wait for *_rest, wait in overflow]
        for status, headers, answer, _wait in overflow:
            assert status == 503, answer[:300]
            assert headers["Retry-After"] == "5"
            assert headers["Content-Type"] == "application/problem+json"
            assert json.loads(answer)["code"] == "service_unavailable"
        assert all(POOL_TIMEOUT * 0.9 <= wait < POOL_TIMEOUT + 1.5 for wait in waits), waits
        assert health == 503 and health_wait < POOL_TIMEOUT + 1.5  # the load balancer sees it too
        assert [status for status, *_rest in busy_results] == [201] * POOL_SIZE  # they finish once freed

        retried = in_threads([lambda body=body: post(port, body)[0] for body in beyond])
        assert retried == [201] * len(beyond)  # the clients' retries, same ids
        burst = in_threads([lambda: post(port, submission(answers=dialogue_answers()))[0] for _ in range(12)])
        assert burst == [201] * 12  # more threads than connections: they queue briefly, none fails
        after = stored_counts(url)
        new = POOL_SIZE + len(beyond) + 12
        assert after == (before[0] + new, before[1] + new * ROWS_PER_RESPONSE, 0)
        print(f"R9: waits before 503 {[round(w, 2) for w in waits]} s (pool timeout {POOL_TIMEOUT} s)")


# -- R13: backup and restore drill -------------------------------------------------------------------------


def libpq(url: str) -> str:
    """The database URL as pg_dump and pg_restore take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def table_counts(url: str) -> dict[str, int]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = connection.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).all()
            count = 'SELECT count(*) FROM "{}"'  # names from pg_tables, not from input
            return {table: connection.scalar(text(count.format(table))) for table in tables}
    finally:
        engine.dispose()


def observed(app: Flask, token: str) -> dict[str, bytes]:
    """What a restore must give back: the public results (stored snapshot bodies) and the exports."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    export = f"/api/v1/admin/questionnaires/{CODE}/export"
    seen = {
        "results": client.get(f"/api/v1/questionnaires/{CODE}/results").get_data(),
        "results by community": client.get(f"/api/v1/questionnaires/{CODE}/results?breakdown=community").get_data(),
        "csv": client.get(export + "?format=csv&text=raw", headers=headers, buffered=True).get_data(),
        "jsonl": client.get(export + "?format=jsonl&text=raw", headers=headers, buffered=True).get_data(),
    }
    with app.app_context():
        db.engine.dispose()
    return seen


def test_backup_and_restore_drill(database_kind, tmp_path):
    """pg_dump -Fc, pg_restore into a new database: same counts, results bytes and export bytes."""
    if database_kind != "postgresql":
        pytest.skip("the drill is for PostgreSQL")
    with fresh_database("postgresql", tmp_path) as url:
        original = make_app(url)
        migrate_and_seed(original)
        known = submission(answers=dialogue_answers())
        with original.app_context():
            people = make_staff()
            fill(60)  # enough responses for published results
            assert submit_response(CODE, known, channel="api").created
            db.session.remove()
        token = people["admin"].token
        published = original.test_client().get(f"/api/v1/questionnaires/{CODE}/results")  # takes the snapshot
        assert published.status_code == 200 and published.json["status"] == "published"
        counts = table_counts(url)
        assert counts["responses"] == 61 and counts["answers"] > 61 and counts["result_snapshots"] >= 1

        dump = tmp_path / "survey.dump"
        restored = make_url(url).set(database=f"{make_url(url).database}_restored")
        restored_url = restored.render_as_string(hide_password=False)
        maintenance = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        started = time.monotonic()
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), libpq(url)], check=True, capture_output=True, timeout=60)
        with maintenance.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{restored.database}"'))
        try:
            subprocess.run(
                ["pg_restore", "--exit-on-error", "--no-owner", "-d", libpq(restored_url), str(dump)],
                check=True,
                capture_output=True,
                timeout=60,
            )
            drill_seconds = time.monotonic() - started
            assert table_counts(restored_url) == counts  # every table, row for row

            before = observed(original, token)
            copy = make_app(restored_url)
            after = observed(copy, token)  # the same admin token works: accounts came back too
            assert after["results"] == before["results"] == published.get_data()
            assert after["results by community"] == before["results by community"]
            assert b'"status":"published"' in after["results"].replace(b" ", b"")
            assert len(after["csv"].splitlines()) == 62  # header + 61 rows
            assert sorted(after["csv"].splitlines()) == sorted(before["csv"].splitlines())  # same rows ...
            assert after["csv"] == before["csv"]  # ... in the same order, byte for byte
            assert hashlib.sha256(after["jsonl"]).digest() == hashlib.sha256(before["jsonl"]).digest()

            client = copy.test_client()  # the copy is a working service: idempotency keys and sequences
            assert client.post(URL, json=known).status_code == 200  # a resend of a restored response: a replay
            assert client.post(URL, json=submission(answers=dialogue_answers())).status_code == 201
            with copy.app_context():
                db.engine.dispose()
            print(f"R13: pg_dump + pg_restore of {counts['responses']} responses in {drill_seconds:.1f} s")
        finally:
            with maintenance.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{restored.database}" WITH (FORCE)'))
            maintenance.dispose()
            with original.app_context():
                db.engine.dispose()
