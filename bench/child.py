"""What runs in a child process: the results and export benchmarks, each in a fresh interpreter.

``python -m bench.child results|export`` reads a JSON spec on stdin and prints one JSON line. A child
of its own per measurement keeps the peak memory its own (``VmHWM``, reset before each run with
``clear_refs``; see :mod:`bench.common`), and the app is the real one (``survey.create_app`` with the
run's database from the environment).

**results** — inside an app context, the full public results computation
(:func:`survey.results.services.compute_public`: the overall table and every allowed breakdown, with
disclosure control) and the staff results with the community breakdown
(:func:`survey.results.services.staff_results`), next to the **bare GROUP BY queries** that those
calls send to the database, recorded during the warm-up and replayed alone on the raw DBAPI
connection (``fetchall``, no Python reshaping). Then a snapshot is stored and served: ``GET
/api/v1/questionnaires/dialogue_2022/results`` (overall, then ``?breakdown=community``) over the test
client, p50 and p99.

**export** — :func:`survey.exports.services.export_responses` of every response in one format to a
sink that only counts bytes; or, as the reference, PostgreSQL's ``COPY (the same pivot query) TO
STDOUT WITH (FORMAT csv, HEADER)`` through psycopg, with the pivot statement recorded from a CSV export.

The results benchmark also times the same counts **without answer profiles** (see
:func:`join_form_queries`: the form the ceilings report measured fastest before the breakdown answers
were denormalised onto the answer rows), to show what the profiles gain on the same data.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from bench.common import percentile, reset_rss_peak, rss_now, rss_peak

CODE = "dialogue_2022"
RESULTS_URL = f"/api/v1/questionnaires/{CODE}/results"


class CountingSink(io.RawIOBase):
    """A write-only binary file that keeps nothing: it counts the bytes (a ``/dev/null`` with a counter)."""

    def __init__(self) -> None:
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.bytes += size
        return size


@contextmanager
def recorded_statements(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement (with its parameters) that ``engine`` sends while the block runs."""
    found: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", record)


def measured(action: Callable[[], Any], runs: int, warmup: int = 1) -> dict[str, Any]:
    """``warmup`` unmeasured calls, then ``runs`` timed ones, each with its own peak resident memory."""
    for _ in range(warmup):
        action()
    seconds, peaks, above = [], [], []
    for _ in range(runs):
        reset_rss_peak()
        before = rss_now()
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
        peaks.append(rss_peak())
        above.append(rss_peak() - before)
    return {"seconds": seconds, "peak_rss": max(peaks), "peak_above_start": max(above)}


def questionnaire_definition(questionnaire: Any) -> dict[str, Any]:
    from survey.questionnaires.services import current_version

    return current_version(questionnaire).definition  # type: ignore[union-attr]


def join_form_queries(questionnaire: Any, breakdowns: list[str]) -> Callable[[], None]:
    """The same counts without answer profiles, in the best such form measured by
    research/perf-ceilings.md: grouped by ids straight from ``answers``, the breakdown group from a
    self-join on the respondent's own answer row. Per aggregate: one GROUP BY of the cells and one of
    the respondents per question; plus the count of responses. PostgreSQL only (``ANY``)."""
    from survey.db import db
    from survey.questionnaires.services import catalog_for, current_version

    catalog = catalog_for(current_version(questionnaire))  # type: ignore[arg-type]
    ids = sorted(catalog.question_ids.values())
    statements: list[tuple[str, tuple[Any, ...]]] = [
        (
            "SELECT question_id, item_id, option_id, rank, number, count(*) FROM answers "
            "WHERE question_id = ANY(%s) GROUP BY 1, 2, 3, 4, 5",
            (ids,),
        ),
        (
            "SELECT question_id, count(DISTINCT response_id) FROM answers WHERE question_id = ANY(%s) GROUP BY 1",
            (ids,),
        ),
        ("SELECT count(*) FROM responses WHERE questionnaire_id = %s", (questionnaire.id,)),
    ]
    for code in breakdowns:
        by = catalog.question_ids[code]
        statements += [
            (
                "SELECT a.question_id, g.option_id, a.item_id, a.option_id, a.rank, a.number, count(*) "
                "FROM answers a LEFT JOIN answers g ON g.response_id = a.response_id AND g.question_id = %s "
                "WHERE a.question_id = ANY(%s) GROUP BY 1, 2, 3, 4, 5, 6",
                (by, ids),
            ),
            (
                "SELECT a.question_id, g.option_id, count(DISTINCT a.response_id) FROM answers a "
                "LEFT JOIN answers g ON g.response_id = a.response_id AND g.question_id = %s "
                "WHERE a.question_id = ANY(%s) GROUP BY 1, 2",
                (by, ids),
            ),
        ]
    raw = db.engine.raw_connection()

    def run() -> None:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        cursor.close()
        raw.rollback()

    run.count = len(statements)  # type: ignore[attr-defined]
    run.close = raw.close  # type: ignore[attr-defined]
    return run


def _app() -> Any:
    from survey import create_app

    return create_app()


def results(spec: dict[str, Any]) -> dict[str, Any]:
    from survey.accounts.services import now
    from survey.db import db, unit_of_work
    from survey.questionnaires.services import current_version, get_questionnaire, today
    from survey.results import services
    from survey.results.models import ResultSnapshot
    from survey.results.queries import count_responses

    runs, warmup = spec.get("runs", 3), spec.get("warmup", 1)
    app = _app()
    out: dict[str, Any] = {"rss_after_start": rss_now()}
    with app.app_context():
        questionnaire = get_questionnaire(CODE)
        computed: dict[str, Any] = {}
        public_sql: list[tuple[str, Any]] = []
        staff_sql: list[tuple[str, Any]] = []

        def first_recorded(action: Callable[[], Any], into: list[tuple[str, Any]]) -> Callable[[], Any]:
            """``action``, whose statements are recorded on its first call (the warm-up, or without
            one the first measured run)."""

            def run() -> Any:
                if into:
                    return action()
                with recorded_statements(db.engine) as found:
                    result = action()
                into.extend(found)
                return result

            return run

        def public() -> Any:
            computed["public"] = services.compute_public(questionnaire)

        def staff() -> Any:
            return services.staff_results(CODE, "community")

        out["public"] = measured(first_recorded(public, public_sql), runs, warmup)
        out["staff"] = measured(first_recorded(staff, staff_sql), runs, warmup)

        raw = db.engine.raw_connection()
        try:

            def replay(statements: list[tuple[str, Any]]) -> Callable[[], None]:
                grouped = [(s, p) for s, p in statements if "GROUP BY" in s or "count(" in s]

                def run() -> None:
                    cursor = raw.cursor()
                    for statement, parameters in grouped:
                        cursor.execute(statement, parameters)
                        cursor.fetchall()
                    cursor.close()
                    raw.rollback()

                run.count = len(grouped)  # type: ignore[attr-defined]
                return run

            bare_public, bare_staff = replay(public_sql), replay(staff_sql)
            out["public_bare"] = {**measured(bare_public, runs, 0), "statements": bare_public.count}  # type: ignore[attr-defined]
            out["staff_bare"] = {**measured(bare_staff, runs, 0), "statements": bare_staff.count}  # type: ignore[attr-defined]
        finally:
            raw.close()
        out["public_statements_all"] = len(public_sql)
        if db.engine.dialect.name == "postgresql":
            join_public = join_form_queries(questionnaire, services.breakdowns(questionnaire_definition(questionnaire)))
            join_staff = join_form_queries(questionnaire, ["community"])
            out["public_join"] = {**measured(join_public, runs, 0), "statements": join_public.count}  # type: ignore[attr-defined]
            out["staff_join"] = {**measured(join_staff, runs, 0), "statements": join_staff.count}  # type: ignore[attr-defined]
            join_public.close()  # type: ignore[attr-defined]
            join_staff.close()  # type: ignore[attr-defined]

        # Taking a snapshot is compute_public (measured above) plus storing it: the results just
        # computed are stored the way refresh_snapshot stores them, and the storing is timed.
        started = time.perf_counter()
        with unit_of_work():
            db.session.add(
                ResultSnapshot(
                    questionnaire_id=questionnaire.id,
                    taken_at=now(),
                    taken_on=today(),
                    responses=count_responses(questionnaire),
                    version=current_version(questionnaire).number,  # type: ignore[union-attr]
                    results=computed["public"],
                )
            )
        out["snapshot_store_seconds"] = time.perf_counter() - started
        db.session.remove()

    client = app.test_client()
    requests = spec.get("snapshot_requests", 200)
    for label, url in (("overall", RESULTS_URL), ("community", RESULTS_URL + "?breakdown=community")):
        for _ in range(20):  # warm-up
            assert client.get(url).status_code == 200  # noqa: S101
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200  # noqa: S101
        out[f"snapshot_{label}"] = {
            "p50_ms": 1000 * percentile(times, 0.5),
            "p99_ms": 1000 * percentile(times, 0.99),
            "requests": requests,
            "bytes": len(response.data),
        }
    return out


def export(spec: dict[str, Any]) -> dict[str, Any]:
    from survey.db import db
    from survey.exports.services import export_responses

    runs = spec.get("runs", 3)
    fmt = spec["format"]
    app = _app()
    out: dict[str, Any] = {"rss_after_start": rss_now(), "format": fmt}
    with app.app_context():
        if fmt == "copy":
            with recorded_statements(db.engine) as statements:
                export_responses(CODE, "csv", CountingSink())
            pivot = next((s, p) for s, p in statements if "GROUP BY" in s and "FILTER" in s)
            db.session.remove()
            raw = db.engine.raw_connection()
            sink = CountingSink()

            def copy() -> None:
                cursor = raw.cursor()
                rows = 0
                with cursor.copy(f"COPY ({pivot[0]}) TO STDOUT WITH (FORMAT csv, HEADER)", pivot[1]) as stream:
                    for block in stream:
                        sink.write(block)
                        rows += bytes(block).count(b"\n")
                out["rows"] = rows - 1
                cursor.close()
                raw.rollback()

            try:
                out.update(measured(copy, runs, spec.get("warmup", 1)))
            finally:
                raw.close()
        else:

            def write() -> None:
                sink = CountingSink()
                summary = export_responses(CODE, fmt, sink)
                out["rows"], out["columns"], out["bytes"] = summary.rows_written, summary.columns, sink.bytes
                db.session.remove()

            out.update(measured(write, runs, spec.get("warmup", 1)))
    return out


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"results": results, "export": export}


def main() -> None:
    spec = json.loads(sys.stdin.read() or "{}")
    result = TASKS[sys.argv[1]](spec)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
