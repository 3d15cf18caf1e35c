"""A real server for tests: gunicorn on loopback, serving a migrated, seeded database of its own."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
URL = "/api/v1/questionnaires/dialogue_2022/responses"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(port: int, body: dict, path: str = URL) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def wait_healthy(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise RuntimeError("gunicorn did not become healthy")


def prepare_database(url: str, **env: str) -> dict[str, str]:
    """Migrate and seed through the real commands; returns the environment for servers on it."""
    environment = {
        **os.environ,
        "SURVEY_DATABASE_URL": url,
        "SURVEY_SECRET_KEY": "live-server-test",
        "SURVEY_RATELIMIT_ENABLED": "false",
        **env,
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=environment, check=True, capture_output=True)
    subprocess.run([*flask, "survey", "seed"], cwd=ROOT, env=environment, check=True, capture_output=True)
    return environment


@contextmanager
def gunicorn(environment: dict[str, str], workers: int = 3, threads: int | None = 8) -> Iterator[int]:
    """A gunicorn master (``workers`` processes x ``threads``) on a free loopback port; yields the port.

    ``threads=None``: the project's own ``gunicorn.conf.py`` (sync workers, its access log and hooks).
    """
    port = free_port()
    if threads is None:
        command = ["-c", "gunicorn.conf.py"]
        environment = {**environment, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(workers)}
    else:
        command = ["--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads)]
        command += ["--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *command, "--log-level", "warning", "wsgi:app"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,  # the access log
    )
    try:
        wait_healthy(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def stored_counts(url: str, submission_id: str | None = None) -> tuple[int, int, int]:
    """Responses (or those with ``submission_id``), answers, and responses without answers."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if submission_id is None:
                responses = connection.scalar(text("SELECT count(*) FROM responses"))
            else:
                key = hashlib.sha256(submission_id.encode()).hexdigest()
                responses = connection.scalar(
                    text("SELECT count(*) FROM responses WHERE submission_key = :key"), {"key": key}
                )
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


def in_threads(calls: list[Callable[[], Any]], together: bool = False, timeout: float = 120) -> list[Any]:
    """Run each call in a thread of its own (all released at one instant if ``together``); their results."""
    barrier = threading.Barrier(len(calls)) if together and calls else None
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        if barrier is not None:
            barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results
