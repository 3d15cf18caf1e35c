"""``python -m bench [--quick]``: run every benchmark on a database of its own and write the report.

Order of a run: create the database (``survey_bench_<random>`` on the server of ``BENCH_DATABASE_URL``,
default ``postgresql://postgres@127.0.0.1:5432/test``), migrate and seed it; submission throughput
(:mod:`bench.submit`); then for each size (10k, 100k, 1M responses; 10k only with ``--quick``) grow the
generated data (:mod:`bench.datagen`) and run the results and export benchmarks in child processes
(:mod:`bench.child`); write ``bench/report.md`` (and ``bench/report.json``); drop the database.

**Time budget.** On the 2-core machine some 1M-response benchmarks take minutes per run. Each one has
a budget (``--budget`` seconds, default 480 in full mode, 0 for none): its time per run is projected
from the previous size (linearly), and when a warm-up plus three runs would not fit, the warm-up is
dropped and then the number of runs lowered (never below one). The report shows the runs of every cell.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import datagen, report, submit
from bench.common import (
    ROOT,
    SERVER_URL,
    CpuMonitor,
    bench_database,
    log,
    machine_speed,
    migrate_and_seed,
    phase,
    run_child,
)

FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
EXPORT_FORMATS = ("copy", "csv", "xlsx", "sav")
SQLITE_RESULTS_MAX = 100_000  # the embedded default's results are measured up to this size (its target)
RUNS = 3


def plan_runs(projected: float | None, budget: float, passes: int = 1) -> tuple[int, int]:
    """(warm-ups, runs) that fit ``budget`` seconds when one run takes ``projected`` seconds and each
    measured run is ``passes`` passes (the results benchmark replays its queries: 2)."""
    if not budget or projected is None:
        return 1, RUNS
    if projected * (1 + passes * RUNS) <= budget:
        return 1, RUNS
    runs = max(1, min(RUNS, math.floor(budget / (projected * passes))))
    return 0, runs


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        "?",
    )
    memory = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    with psycopg.connect(SERVER_URL) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings = dict(
            connection.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'synchronous_commit', 'jit')"
            ).fetchall()
        )
    wrk = shutil.which("wrk")
    packages = {}
    for name in ("flask", "sqlalchemy", "psycopg", "marshmallow", "gunicorn", "xlsxwriter", "pyreadstat", "pandas"):
        try:
            from importlib.metadata import version as package_version

            packages[name] = package_version(name)
        except Exception:  # noqa: S112 - a missing package is only not listed
            continue
    return {
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(int(memory.split()[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": version,
        "postgresql_settings": settings,
        "packages": packages,
        "load_generator": (
            subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]  # noqa: S603
            if wrk
            else "python (threads + http.client)"
        ),
    }


def sqlite_results(url: str) -> dict[str, Any]:
    """The results benchmark on the embedded default: the same responses copied into a fresh SQLite file."""
    with tempfile.TemporaryDirectory(prefix="survey-bench-results-") as directory:
        sqlite_url = f"sqlite:///{directory}/survey.sqlite3"
        copied = datagen.copy_to_sqlite(url, sqlite_url)
        found = run_child("results", {"runs": RUNS, "warmup": 1, "snapshot_requests": 200}, sqlite_url)
        return {**found, "runs": RUNS, "warmup": 1, "copy_seconds": copied}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="under two minutes: checks that the suite works")
    parser.add_argument("--output", default=str(ROOT / "bench" / "report.md"), help="the Markdown report")
    parser.add_argument("--budget", type=float, default=None, help="seconds per benchmark and size (0: none)")
    parser.add_argument(
        "--sizes", default=None, help="comma-separated response counts (default 10k,100k,1M); none: submissions only"
    )
    args = parser.parse_args(argv)

    quick = args.quick
    if args.sizes == "none":  # the submission benchmark alone
        sizes: tuple[int, ...] = ()
    else:
        sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (QUICK_SIZES if quick else FULL_SIZES)
    budget = args.budget if args.budget is not None else (0 if quick else 480)
    plan = (
        submit.Plan(workers=(2, 3), connections=(16,), warmup=1, duration=2, runs=RUNS)
        if quick
        else submit.Plan(workers=(2, 3), connections=(8, 16, 32), warmup=3, duration=10, runs=RUNS)
    )
    data: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "machine_speed": {"start": machine_speed()},
        "budget": budget,
        "sizes": list(sizes),
        "phases": {},
        "results": {},
        "exports": {},
        "results_sqlite": {},
        "data": {},
    }
    started = time.monotonic()
    monitor = CpuMonitor().start()
    output = Path(args.output)

    def save() -> None:
        """Write what is measured so far (also after a failure: a run is never all lost)."""
        data["seconds"] = time.monotonic() - started
        data["foreign_cpu"] = monitor.window(0, float("inf"))
        output.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        output.write_text(report.render(data), encoding="utf-8")

    def attempt(name: str, action: Any) -> Any:
        """Run one benchmark; on failure note the error in the report and go on with the next."""
        record: dict[str, Any] = {}
        try:
            with phase(monitor, record):
                return action()
        except Exception as error:  # one failed benchmark must not lose the others
            log(f"{name} failed: {str(error)[-2000:]}")
            data["errors"].append({"benchmark": name, "error": str(error)[-2000:]})
            return None
        finally:
            data["phases"][name] = record
            save()

    data["errors"] = []
    try:
        with bench_database() as url:
            log(f"database {url.rsplit('/', 1)[1]}: migrating and seeding")
            migrate_and_seed(url)
            found = attempt("submit", lambda: submit.run(url, plan))
            if found is not None:
                data["submit"] = found
            previous: dict[str, float] = {}
            previous_size = None
            for size in sizes:
                scale = size / previous_size if previous_size else None
                log(f"data: growing to {size:,} responses")
                seconds = datagen.grow_to(url, size)
                data["data"][str(size)] = {**datagen.check(url), "seconds": seconds}

                projected = previous["results"] * scale if scale and "results" in previous else None
                warmup, runs = plan_runs(projected, budget, passes=2)
                log(f"results at {size:,}: {warmup} warm-up, {runs} runs")
                spec = {"runs": runs, "warmup": warmup, "snapshot_requests": 200}
                found = attempt(f"results {size}", lambda spec=spec: run_child("results", spec, url))
                if found is not None:
                    found.update(runs=runs, warmup=warmup)
                    data["results"][str(size)] = found
                    previous["results"] = float(min(found["public"]["seconds"]) + min(found["staff"]["seconds"]))
                    save()
                if size <= SQLITE_RESULTS_MAX:
                    log(f"results on SQLite at {size:,}: copying the data, {RUNS} runs")
                    found = attempt(f"results sqlite {size}", lambda: sqlite_results(url))
                    if found is not None:
                        data["results_sqlite"][str(size)] = found
                        save()

                data["exports"][str(size)] = {}
                for fmt in EXPORT_FORMATS:
                    projected = previous[fmt] * scale if scale and fmt in previous else None
                    warmup, runs = plan_runs(projected, budget)
                    log(f"export {fmt} at {size:,}: {warmup} warm-up, {runs} runs")
                    spec = {"format": fmt, "runs": runs, "warmup": warmup}
                    found = attempt(f"export {fmt} {size}", lambda spec=spec: run_child("export", spec, url))
                    if found is not None:
                        found.update(runs=runs, warmup=warmup)
                        data["exports"][str(size)][fmt] = found
                        previous[fmt] = min(found["seconds"])
                        save()
                previous_size = size
            log("dropping the database")
    finally:
        monitor.stop()
        data["machine_speed"]["end"] = machine_speed()
        save()
    log(f"report: {output} ({data['seconds'] / 60:.1f} min)")
    print(report.summary(data))
    if data["errors"]:
        log(f"{len(data['errors'])} benchmarks failed: see the report")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
