"""The app's own work per submission in instructions: a yardstick for small changes on a noisy machine.

``python -m bench.instructions [--submissions 200] [--postgresql]`` prints how many machine
instructions one valid op-ed submission costs the app at this checkout: the request through the WSGI
app (Flask, validation, SQLite's transaction on a fresh file in WAL mode; or the one statement on a
PostgreSQL database of its own, whose server's work is not counted), without gunicorn or a network.
It runs the app under valgrind's callgrind, which counts instructions whatever else the machine is
doing: the same code gives the same count to within about 0.5 %, where throughput on a shared machine
moved by ±20 % from one 8-second run to the next. For a before/after comparison, run it in both
checkouts.

It is not a benchmark of record (those are ratios to a reference in the same run, ``make bench``):
callgrind sees user-space instructions only, not the kernel's work (SQLite's writes to its log),
memory stalls or waits; and under gunicorn, on a shared machine, the stalls on memory gone cold
between requests can cost as much again as the instructions (``bench/RESULTS.md``, section 1e).
Checkpoints are left out: the app takes them on a thread every 0.2 s of real time, about one per few
hundred submissions at full load, but under callgrind, which runs the app some 40 times slower, they
would come every few submissions. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from werkzeug.test import EnvironBuilder

from bench.bodies import body_templates, with_fresh_id
from bench.common import ROOT, app_environment, bench_database, migrate_and_seed, sqlalchemy_url
from bench.submit import BODIES, PATH

WARM_UP = 100  # submissions before counting: caches filled, statements prepared


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed (Debian's package valgrind)")
    return found


def child(submissions: int) -> None:
    """Under callgrind (instrumentation off at start): warm up, then count ``submissions`` alone."""
    from survey import create_app
    from survey.db import SQLITE_CHECKPOINTS

    SQLITE_CHECKPOINTS.delay = 24 * 3600.0  # no checkpoint inside the count (see the module's docstring)
    app = create_app()
    templates = body_templates(BODIES)
    # Every request built before counting (a fresh submission_id each): only the app's work is counted.
    requests = [
        EnvironBuilder(
            path=PATH,
            method="POST",
            data=with_fresh_id(templates[index % len(templates)]),
            content_type="application/json",
        ).get_environ()
        for index in range(WARM_UP + submissions)
    ]
    statuses: list[str] = []

    def submit(index: int) -> None:
        for _chunk in app(requests[index], lambda status, headers, *_: statuses.append(status)):
            pass

    def control(option: str) -> None:
        subprocess.run([_tool("callgrind_control"), option, str(os.getpid())], check=True, capture_output=True)  # noqa: S603

    for index in range(WARM_UP):
        submit(index)
    control("--instr=on")
    control("--zero")
    for index in range(submissions):
        submit(WARM_UP + index)
    control("--dump")
    refused = [status for status in statuses if not status.startswith("201")]
    if refused:
        raise SystemExit(f"{len(refused)} submissions were not stored: {refused[:3]}")


def measure(submissions: int, postgresql: bool = False) -> float:
    """Instructions per submission of the app at this checkout (on SQLite, or on a PostgreSQL database
    of its own, whose server's work is not counted)."""
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="survey-bench-instructions-"))
        if postgresql:
            server_url = stack.enter_context(bench_database())
            migrate_and_seed(server_url)
            url = sqlalchemy_url(server_url)
        else:
            url = f"sqlite:///{directory}/survey.sqlite3"
            migrate_and_seed(url)
        out = Path(directory) / "callgrind"
        subprocess.run(  # noqa: S603
            [
                _tool("valgrind"),
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}.%p",
                sys.executable,
                "-m",
                "bench.instructions",
                "--child",
                "--submissions",
                str(submissions),
            ],
            cwd=ROOT,
            env=app_environment(url),
            check=True,
            capture_output=True,
        )
        dumps = sorted(Path(directory).glob("callgrind.*.1"))  # the dump taken after the counted loop
        if len(dumps) != 1:
            raise RuntimeError(f"expected one callgrind dump of the counted loop, found {len(dumps)}")
        totals = re.search(r"^totals:\s+(\d+)", dumps[0].read_text(), re.MULTILINE)
        if totals is None:
            raise RuntimeError(f"no totals in {dumps[0].name}")
        return int(totals.group(1)) / submissions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=200, help="submissions counted (after 100 of warm-up)")
    parser.add_argument(
        "--postgresql", action="store_true", help="on a PostgreSQL database of its own (BENCH_DATABASE_URL's server)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.submissions)
        return 0
    per_submission = measure(args.submissions, args.postgresql)
    database = "PostgreSQL" if args.postgresql else "SQLite"
    counted = f"{args.submissions} counted, at {ROOT}"
    print(f"{per_submission / 1e6:.3f}M instructions per submission on {database} ({counted})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
