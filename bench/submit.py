"""Submission throughput: the real app under gunicorn next to the single-statement insert ceiling.

**The app.** gunicorn with the project's ``gunicorn.conf.py`` (sync workers, the production access
log, worker recycling) and 2 or 3 workers, serving the run's database with the rate limit off. A load
generator on 127.0.0.1 posts varied, valid op-ed responses (:mod:`bench.bodies`), each with a fresh
version-4 ``submission_id``, at a fixed number of connections for a fixed time: ``wrk`` with
``bench/post.lua`` when it is installed (``apt-get install wrk``), otherwise a small Python generator
(threads and ``http.client``). Every status other than 201 is an error. After each run the rows
stored are counted in the database, and the CPU used by the app, by PostgreSQL (the run's backends)
and by the load generator is read from ``/proc``, to show where the time goes.

**The ceiling** (``cte`` mode of research/perf-ceilings.md §3): the same transaction — one response
row plus its answer rows, exactly the rows the app stores for the same bodies — as a single SQL
statement ``WITH r AS (INSERT INTO responses … ON CONFLICT DO NOTHING RETURNING id) INSERT INTO
answers SELECT … FROM r, unnest(…)``, from two client processes with psycopg, each its own
connection in autocommit (one durable commit per response), for the same time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.bodies import body_templates, with_fresh_id
from bench.common import (
    ROOT,
    Summary,
    app_environment,
    descendants,
    log,
    migrate_and_seed,
    percentile,
    process_cpu,
)
from bench.datagen import truncate

PATH = "/api/v1/questionnaires/dialogue_2022/responses"
LUA = Path(__file__).with_name("post.lua")
BODIES = 400  # distinct answer sets; each request gets a fresh submission_id

CEILING_SQL = """
WITH r AS (
    INSERT INTO responses (id, questionnaire_id, version_id, language, channel, submitted_on,
                           submission_key, payload_hash)
    VALUES (%(id)s, %(questionnaire_id)s, %(version_id)s, %(language)s, 'api', current_date,
            %(submission_key)s, %(payload_hash)s)
    ON CONFLICT (questionnaire_id, submission_key) DO NOTHING
    RETURNING id
), p AS (
    INSERT INTO answer_profiles (questionnaire_id, id, breakdowns)
    SELECT %(questionnaire_id)s, %(profile_id)s, %(breakdowns)s::json FROM r
    ON CONFLICT DO NOTHING
)
INSERT INTO answers (response_id, question_id, seq, item_id, option_id, number, text, rank, profile_id)
SELECT r.id, a.*, %(profile_id)s FROM r,
    unnest(%(question_id)s::int[], %(seq)s::smallint[], %(item_id)s::int[], %(option_id)s::int[],
           %(number)s::float8[], %(text)s::text[], %(rank)s::smallint[]) AS a
"""


@dataclass(frozen=True)
class Plan:
    """How long and how often: the same for the app and the ceiling."""

    workers: tuple[int, ...]
    connections: tuple[int, ...]
    warmup: float
    duration: float
    runs: int


# -- the ceiling ------------------------------------------------------------------------------------


def ceiling_parameters(url: str, templates: list[str]) -> list[dict[str, Any]]:
    """For each body, the parameters of the single statement: the app's own answer rows and answer
    profile (its validation and storage mapping, run here once, outside the timing)."""
    os.environ.update({k: v for k, v in app_environment(url).items() if k.startswith("SURVEY_")})
    from survey import create_app
    from survey.questionnaires.definition import canonical_json
    from survey.questionnaires.services import catalog_for, get_questionnaire, published_version
    from survey.responses.profiles import profile_of
    from survey.responses.schemas import load_answers
    from survey.responses.services import ANSWER_COLUMNS, _answer_rows

    app = create_app({"DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://", 1)})
    parameters = []
    with app.app_context():
        questionnaire = get_questionnaire("dialogue_2022")
        catalog = catalog_for(published_version(questionnaire, None))
        for template in templates:
            body = json.loads(template)
            answers = load_answers(catalog.answer_schema, body["answers"])
            rows = _answer_rows(catalog, answers)
            payload = canonical_json({"version": catalog.number, "language": body["language"], "answers": answers})
            profile_id, breakdowns = profile_of(catalog.breakdowns, answers)
            parameters.append(
                {
                    "questionnaire_id": questionnaire.id,
                    "version_id": catalog.version_id,
                    "language": body["language"],
                    "payload_hash": hashlib.sha256(payload.encode()).hexdigest(),
                    "profile_id": profile_id,
                    "breakdowns": breakdowns,
                    **{column: [row[column] for row in rows] for column in ANSWER_COLUMNS},
                }
            )
    return parameters


def _postgresql_transaction(url: str) -> Callable[[dict[str, Any]], None]:
    """The ceiling's transaction on PostgreSQL: the single statement, autocommitted."""
    connection = psycopg.connect(url, autocommit=True)

    def run(parameters: dict[str, Any]) -> None:
        connection.execute(CEILING_SQL, {**parameters, "id": uuid.uuid4()})

    return run


def _sqlite_transaction(url: str) -> Callable[[dict[str, Any]], None]:
    """The same transaction on SQLite, as raw ``sqlite3`` runs it with the app's settings and its own
    statements: BEGIN IMMEDIATE, the response, the profile, the answers (executemany), COMMIT; and,
    like the app, the checkpoints left to a thread of the process."""
    from survey.db import SQLITE_CHECKPOINTS, SQLITE_PRAGMAS
    from survey.responses.services import (
        ANSWER_COLUMNS,
        PROFILE_INSERT_SQL,
        RESPONSE_INSERT_SQL,
        SQLITE_ANSWERS_INSERT_SQL,
    )

    path = url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        connection.execute(pragma)
    today = dt.date.today().isoformat()

    def run(parameters: dict[str, Any]) -> None:
        response = uuid.uuid4().hex
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            RESPONSE_INSERT_SQL,
            {**parameters, "id": response, "channel": "api", "submitted_on": today, "requires_code": False},
        ).fetchall()
        connection.execute(PROFILE_INSERT_SQL, parameters)
        rows = zip(*(parameters[column] for column in ANSWER_COLUMNS), strict=True)
        connection.executemany(SQLITE_ANSWERS_INSERT_SQL, [(response, *row, parameters["profile_id"]) for row in rows])
        connection.execute("COMMIT")
        SQLITE_CHECKPOINTS.request(path)

    return run


def _ceiling_client(url: str, parameters: list[dict[str, Any]], warmup: float, duration: float, out: Any) -> None:
    """One client process: ceiling transactions for ``warmup`` then ``duration`` seconds."""
    transaction = _sqlite_transaction(url) if url.startswith("sqlite") else _postgresql_transaction(url)
    latencies: list[float] = []
    index = 0
    deadline = time.perf_counter() + warmup
    measuring = False
    while True:
        now = time.perf_counter()
        if now >= deadline:
            if measuring:
                break
            measuring, deadline, started = True, now + duration, now
        fixed = parameters[index % len(parameters)]
        index += 1
        submission = str(uuid.uuid4())
        transaction({**fixed, "submission_key": hashlib.sha256(submission.encode()).hexdigest()})
        if measuring:
            latencies.append(time.perf_counter() - now)
    out.put({"count": len(latencies), "seconds": time.perf_counter() - started, "latencies": latencies})


def ceiling_run(url: str, parameters: list[dict[str, Any]], clients: int, warmup: float, duration: float) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_ceiling_client, args=(url, parameters, warmup, duration, queue)) for _ in range(clients)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=warmup + duration + 120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    latencies = [value for result in results for value in result["latencies"]]
    rate = sum(result["count"] / result["seconds"] for result in results)
    return {
        "rate": rate,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "count": len(latencies),
    }


# -- the app under gunicorn --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with the project's configuration, on a free loopback port."""

    def __init__(self, url: str, workers: int) -> None:
        self.url, self.workers, self.port = url, workers, _free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        # BENCH_APP_ROOT serves another checkout of the app (a before/after comparison of a change).
        root = os.environ.get("BENCH_APP_ROOT", str(ROOT))
        env = {**app_environment(self.url), "PORT": str(self.port), "HOST": "127.0.0.1", "WORKERS": str(self.workers)}
        env.update(LOG_LEVEL="warning", PYTHONPATH=root)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,  # the access log (production format) is written, then dropped
            stderr=subprocess.DEVNULL,
        )
        self._wait_healthy()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def _wait_healthy(self, seconds: float = 60) -> None:
        assert self.process is not None  # noqa: S101
        deadline = time.monotonic() + seconds
        healthy = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                connection.request("GET", "/health")
                healthy = healthy + 1 if connection.getresponse().status == 200 else 0
                if healthy >= 2 * self.workers:  # each worker has imported the app and connected
                    return
            except OSError:
                time.sleep(0.2)
            finally:
                connection.close()
        raise RuntimeError("gunicorn did not become healthy")

    def cpu(self) -> tuple[float, int]:
        """CPU seconds of the master and its live workers, and how many processes that is."""
        assert self.process is not None  # noqa: S101
        family = descendants(self.process.pid)
        return sum(process_cpu(pid) for pid in family), len(family)

    def worker_pids(self) -> set[int]:
        assert self.process is not None  # noqa: S101
        return descendants(self.process.pid) - {self.process.pid}


def _backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (found by its command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"postgres: ") and f" {database} ".encode() in command:
            found[int(entry)] = process_cpu(int(entry))
    return found


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def _stored(url: str) -> int:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            return connection.execute("SELECT count(*) FROM responses").fetchone()[0]
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT count(*) FROM responses").fetchone()[0]  # type: ignore[index]


def _wrk(port: int, bodies: Path, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run; its JSON summary plus its own CPU seconds."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(LUA), f"http://127.0.0.1:{port}{PATH}",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_PATH": PATH}
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{text[-2000:]}")
    result = json.loads(line.removeprefix("BENCH_JSON "))
    errors = result["not201"] + sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "generator": "wrk",
        "ok": result["requests"] - result["not201"],
        "requests": result["requests"],
        "seconds": result["duration_us"] / 1e6,
        "errors": errors,
        "statuses": result["statuses"],
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "generator_cpu": usage.ru_utime + usage.ru_stime,
    }


def _python_load(port: int, templates: list[str], connections: int, seconds: float) -> dict[str, Any]:
    """The fallback generator: one thread per connection, a new connection per request (as gunicorn's
    sync workers close it anyway), bounded by time."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[dict[int, int]] = [{} for _ in range(connections)]
    errors = [0] * connections
    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}
    cpu_before = time.process_time()

    def worker(index: int) -> None:
        n = index
        while time.perf_counter() < deadline:
            body = with_fresh_id(templates[n % len(templates)]).encode()
            n += connections
            started = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("POST", PATH, body, headers)
                response = connection.getresponse()
                response.read()
                statuses[index][response.status] = statuses[index].get(response.status, 0) + 1
                if response.status != 201:
                    errors[index] += 1
                latencies[index].append(time.perf_counter() - started)
            except OSError:
                errors[index] += 1
            finally:
                connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    elapsed = time.perf_counter() - started
    every = [value for values in latencies for value in values]
    merged: dict[str, int] = {}
    for counts in statuses:
        for status, count in counts.items():
            if status != 201:
                merged[str(status)] = merged.get(str(status), 0) + count
    ok = sum(counts.get(201, 0) for counts in statuses)
    return {
        "generator": "python",
        "ok": ok,
        "requests": len(every),
        "seconds": elapsed,
        "errors": sum(errors),
        "statuses": merged,
        "p50_ms": 1000 * percentile(every, 0.5),
        "p99_ms": 1000 * percentile(every, 0.99),
        "generator_cpu": time.process_time() - cpu_before,
    }


def load_run(server: Server, bodies: Path, templates: list[str], connections: int, seconds: float) -> dict:
    """One bounded load run against ``server``, with the stored rows and the CPU of each party."""
    database = server.url.rsplit("/", 1)[1]  # SQLite has no server: its work is in the app's CPU
    stored_before = _stored(server.url)
    app_before, _ = server.cpu()
    workers_before = server.worker_pids()
    pg_before = _backend_cpu(database)
    busy_before, total_before = _machine_busy()
    if shutil.which("wrk"):
        result = _wrk(server.port, bodies, connections, seconds)
    else:
        result = _python_load(server.port, templates, connections, seconds)
    busy_after, total_after = _machine_busy()
    app_after, _ = server.cpu()
    pg_after = _backend_cpu(database)
    result["stored"] = _stored(server.url) - stored_before
    result["rate"] = result["ok"] / result["seconds"]
    result["app_cpu"] = app_after - app_before  # recycled workers' CPU is lost: a lower bound
    result["pg_cpu"] = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    result["machine_busy"] = busy_after - busy_before
    result["machine_cores"] = (total_after - total_before) / max(result["seconds"], 1e-9)
    result["worker_restarts"] = len(server.worker_pids() - workers_before)
    return result


def _summarise(runs: list[dict]) -> dict[str, Any]:
    ok = sum(run["ok"] for run in runs)
    return {
        "rate": Summary.of([run["rate"] for run in runs]).as_dict(),
        "p50_ms": Summary.of([run["p50_ms"] for run in runs]).as_dict(),
        "p99_ms": Summary.of([run["p99_ms"] for run in runs]).as_dict(),
        "errors": sum(run["errors"] for run in runs),
        "statuses": [run["statuses"] for run in runs if run["statuses"]],
        "ok": ok,
        "stored": sum(run["stored"] for run in runs),
        "generator": runs[0]["generator"],
        # CPU milliseconds per stored response (medians over the runs)
        "app_cpu_ms": statistics.median(1000 * r["app_cpu"] / max(r["ok"], 1) for r in runs),
        "pg_cpu_ms": statistics.median(1000 * r["pg_cpu"] / max(r["ok"], 1) for r in runs),
        "generator_cpu_ms": statistics.median(1000 * r["generator_cpu"] / max(r["ok"], 1) for r in runs),
        "generator_cpu_share": statistics.median(100 * r["generator_cpu"] / r["seconds"] for r in runs),
        "machine_cpu_ms": statistics.median(1000 * r["machine_busy"] / max(r["ok"], 1) for r in runs),
        "machine_busy_share": statistics.median(100 * r["machine_busy"] / r["seconds"] for r in runs),
        "worker_restarts": sum(run["worker_restarts"] for run in runs),
        "runs": runs,
    }


def _ceiling(url: str, parameters: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """The reference transaction from two client processes, ``plan.runs`` times: medians with min–max."""
    runs = [ceiling_run(url, parameters, 2, plan.warmup if i == 0 else 0.5, plan.duration) for i in range(plan.runs)]
    return {key: Summary.of([r[key] for r in runs]).as_dict() for key in ("rate", "p50_ms", "p99_ms")}


def run(url: str, plan: Plan) -> dict[str, Any]:
    """The submission benchmark: the ceiling (2 clients), then the app at each worker count and concurrency."""
    templates = body_templates(BODIES)
    results: dict[str, Any] = {"plan": plan.__dict__, "bodies": len(templates), "app": []}
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as handle:
        handle.write("\n".join(templates) + "\n")
        bodies = Path(handle.name)
    try:
        truncate(url)
        parameters = ceiling_parameters(url, templates)
        results["rows_per_response"] = statistics.fmean(len(p["question_id"]) for p in parameters)
        log(f"submit: ceiling, 2 clients, {plan.runs} × {plan.duration:.0f} s")
        results["ceiling"] = {**_ceiling(url, parameters, plan), "clients": 2}
        for workers in plan.workers:
            truncate(url)
            with Server(url, workers) as server:
                for connections in plan.connections:
                    log(f"submit: app, {workers} sync workers, {connections} connections")
                    load_run(server, bodies, templates, connections, plan.warmup)  # warm-up, not counted
                    runs = [load_run(server, bodies, templates, connections, plan.duration) for _ in range(plan.runs)]
                    results["app"].append({"workers": workers, "connections": connections, **_summarise(runs)})
        truncate(url)
        results["sqlite"], results["sqlite_ceiling"] = sqlite_run(bodies, templates, plan)
    finally:
        bodies.unlink(missing_ok=True)
    return results


def sqlite_run(bodies: Path, templates: list[str], plan: Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The embedded default: the same app, load and grid of workers and connections on a fresh SQLite
    file (WAL); and its reference, SQLite's own rate for the same transaction from two processes
    (raw ``sqlite3``, the app's settings and statements). Its target is absolute (1,000 responses/s)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="survey-bench-sqlite-") as directory:
        url = f"sqlite:///{directory}/survey.sqlite3"
        migrate_and_seed(url)
        parameters = ceiling_parameters(url, templates)
        log(f"submit: SQLite ceiling, 2 processes, {plan.runs} × {plan.duration:.0f} s")
        ceiling = _ceiling(url, parameters, plan)
        for workers in plan.workers:
            with Server(url, workers) as server:
                for connections in plan.connections:
                    log(f"submit: SQLite, {workers} sync workers, {connections} connections")
                    load_run(server, bodies, templates, connections, plan.warmup)
                    runs = [load_run(server, bodies, templates, connections, plan.duration) for _ in range(plan.runs)]
                    rows.append({"workers": workers, "connections": connections, **_summarise(runs)})
    return rows, ceiling
