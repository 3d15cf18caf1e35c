"""Shared pieces of the benchmark: statistics, the run's own database, child processes, CPU and memory.

Nothing here knows about a particular benchmark. Times are wall-clock (``time.perf_counter``); CPU is
read from ``/proc/<pid>/stat`` (user + system ticks); memory from ``/proc/self/status`` (``VmRSS``,
and ``VmHWM``, the peak, which ``/proc/self/clear_refs`` resets so that one process can measure the
peak of each run separately).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# -- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Median with min and max of a benchmark's measured runs."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        values = [float(v) for v in values]
        return cls(statistics.median(values), min(values), max(values), tuple(values))

    @property
    def spread(self) -> float:
        """(max − min) / median: how much the runs disagreed."""
        return (self.high - self.low) / self.median if self.median else 0.0

    def fmt(self, digits: int = 0, unit: str = "") -> str:
        number = f"{{:,.{digits}f}}"
        return f"{number.format(self.median)}{unit} ({number.format(self.low)}–{number.format(self.high)})"

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": list(self.runs)}


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- the run's own database --------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def bench_database(server_url: str = SERVER_URL) -> Iterator[str]:
    """A new, empty PostgreSQL database for the block (dropped afterwards, also on failure); its URL."""
    name = f"survey_bench_{secrets.token_hex(5)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_environment(url: str) -> dict[str, str]:
    """The environment of every app process of the run: its database, no rate limit."""
    return {
        **os.environ,
        "SURVEY_DATABASE_URL": url,
        "SURVEY_SECRET_KEY": "bench-secret",
        "SURVEY_RATELIMIT_ENABLED": "false",
        "PYTHONPATH": str(ROOT),
    }


def migrate_and_seed(url: str) -> None:
    """Build the database with the migrations and seed the shipped questionnaires, as ``make run`` does."""
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for command in (["db", "upgrade"], ["survey", "seed"]):
        subprocess.run([*flask, *command], cwd=ROOT, env=app_environment(url), check=True, capture_output=True)  # noqa: S603


# -- child processes ---------------------------------------------------------------------------


def run_child(task: str, spec: dict[str, Any], url: str, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m bench.child TASK`` with ``spec`` on stdin; return the JSON it prints last."""
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.child", task],
        cwd=ROOT,
        env=app_environment(url),
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.child {task} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- memory of this process --------------------------------------------------------------------


def _status(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def rss_now() -> int:
    """Resident memory of this process now, in bytes."""
    return _status("VmRSS")


def rss_peak() -> int:
    """Peak resident memory of this process since start or the last :func:`reset_rss_peak`, in bytes."""
    return _status("VmHWM")


def reset_rss_peak() -> None:
    """Make the peak restart from the current resident size (Linux ``clear_refs`` 5)."""
    with contextlib.suppress(OSError):  # not permitted: the peak then covers the whole process
        Path("/proc/self/clear_refs").write_text("5")


# -- CPU of processes --------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _parent_and_name(pid: int) -> tuple[int, str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    return int(text.rsplit(")", 1)[1].split()[1]), name


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _parent_and_name(int(entry))
            if found:
                parents[int(entry)] = found[0]
    family = {root}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                changed = True
    return family


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends connected to the run's database (other than the asking one)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return [row[0] for row in rows]


def machine_speed() -> dict[str, float]:
    """How fast this machine runs Python at the moment, in nanoseconds per step (medians of five):
    ``loop``, a loop on local variables (the processor alone), and ``memory``, reads at random
    places of a 4M-element list (mostly cache misses, as an app's many objects cause). Machines of
    one kind, and one machine from hour to hour, have run this app at speeds 2× apart; the two
    probes let later runs be compared by something other than the clock."""

    def median_ns(run: Callable[[], None]) -> float:
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            run()
            timings.append((time.perf_counter() - started) * 1e3)  # ms per million steps = ns per step
        return statistics.median(timings)

    def loop() -> None:
        total = 0
        for step in range(1_000_000):
            total += step

    values = list(range(4_000_000))
    places = [random.randrange(len(values)) for _ in range(1_000_000)]  # noqa: S311 - not for security

    def memory() -> None:
        total = 0
        for place in places:
            total += values[place]

    return {"loop": median_ns(loop), "memory": median_ns(memory)}


@dataclass
class CpuMonitor:
    """Samples, every ``interval`` seconds, the CPU used by processes that are not this run's.

    "Ours" is this process and its descendants plus every PostgreSQL process (the server serves this
    run, and its background writers cannot be split by database). The rest is foreign load from
    other work on the shared machine; each phase reports its mean and 90th percentile in % of one
    core, the way the ceilings report did.
    """

    interval: float = 2.0
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, foreign % of one core)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _foreign_cpu(self) -> dict[int, float]:
        ours = descendants(os.getpid())
        usage: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            found = _parent_and_name(pid)
            if found is None or pid in ours or found[1].startswith("postgres"):
                continue
            usage[pid] = process_cpu(pid)
        return usage

    def _loop(self) -> None:
        before, at = self._foreign_cpu(), time.monotonic()
        while not self._stop.wait(self.interval):
            after, now = self._foreign_cpu(), time.monotonic()
            used = sum(after[pid] - before.get(pid, 0.0) for pid in after if after[pid] >= before.get(pid, 0.0))
            self.samples.append((now, 100.0 * used / (now - at)))
            before, at = after, now

    def start(self) -> CpuMonitor:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cpu-monitor")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def window(self, start: float, end: float) -> dict[str, float] | None:
        """Foreign CPU between two ``time.monotonic()`` readings: mean and p90, % of one core."""
        values = [value for at, value in self.samples if start <= at <= end + self.interval]
        if not values:
            return None
        return {"mean": statistics.fmean(values), "p90": percentile(values, 0.9), "samples": len(values)}


@contextmanager
def phase(monitor: CpuMonitor | None, record: dict[str, Any]) -> Iterator[None]:
    """Time a phase of the run and note the foreign CPU during it into ``record``."""
    start = time.monotonic()
    try:
        yield
    finally:
        record["seconds"] = time.monotonic() - start
        if monitor is not None:
            record["foreign_cpu"] = monitor.window(start, time.monotonic())


def log(message: str) -> None:
    """Progress on stderr, with the time, so that a long full run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
