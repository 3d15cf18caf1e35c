"""The Markdown report of a run (``bench/report.md``) and the short summary printed at the end.

Every figure is the median of the measured runs with min–max in brackets; every benchmark sits next to
its reference measured in the same run, with the ratio, and each target of issue 7 gets a verdict.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import MIB, Summary

# Targets of issue 7 (on this machine, against the reference of the same run).
SUBMIT_SHARE = 0.40  # of the single-statement ceiling
SQLITE_SUBMIT = 1000  # responses/s on the embedded default (issue 7)
SUBMIT_P99_MS = 50.0  # at 16 connections
RESULTS_RATIO = 1.5  # full results / bare GROUP BY, at 1M
SNAPSHOT_P99_MS = 20.0
SQLITE_RESULTS_S = 2.0  # full results at 100k responses on the embedded default
CSV_RATIO = 3.0  # CSV export / COPY, at 1M
EXPORT_MEMORY = 200 * MIB


def _s(values: list[float], digits: int = 2, unit: str = "") -> str:
    return Summary.of(values).fmt(digits, unit)


def _d(summary: dict[str, Any], digits: int = 0, unit: str = "", scale: float = 1.0) -> str:
    values = [v * scale for v in summary["runs"]]
    return Summary.of(values).fmt(digits, unit)


def _mib(value: float) -> str:
    return f"{value / MIB:,.0f} MiB"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _size(size: str | int) -> str:
    n = int(size)
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _foreign(record: dict[str, Any] | None) -> str:
    cpu = (record or {}).get("foreign_cpu")
    return "–" if not cpu else f"{cpu['mean']:.0f} % (p90 {cpu['p90']:.0f} %)"


def submission_section(data: dict[str, Any]) -> list[str]:
    sub = data["submit"]
    ceiling = sub["ceiling"]["rate"]["median"]
    plan = sub["plan"]
    lines = [
        "## 1. Submission throughput",
        "",
        f"The real app under gunicorn (`gunicorn.conf.py`, sync workers, rate limit off) receiving valid op-ed "
        f"responses ({sub['bodies']} varied answer sets, {sub['rows_per_response']:.1f} answer rows on average, a "
        f"fresh submission_id each) from {data['machine']['load_generator']} on 127.0.0.1; "
        f"{plan['runs']} runs of {plan['duration']:.0f} s after a {plan['warmup']:.0f} s warm-up per row. "
        "Any status but 201 is an error; `stored` counts the new rows in the database (it may exceed the 201s "
        "by the requests still in flight when the generator stopped). CPU per stored response is read from "
        "/proc: the app (gunicorn master and workers), PostgreSQL (the run's backends) and the load generator.",
        "",
        "| setup | responses/s | of ceiling | p50 ms | p99 ms | errors | 201s / stored | CPU ms/response app · PG · generator | machine busy |",  # noqa: E501
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| **ceiling**: single-statement CTE, 2 psycopg clients | {_d(sub['ceiling']['rate'])} | 100 % | "
        f"{_d(sub['ceiling']['p50_ms'], 2)} | {_d(sub['ceiling']['p99_ms'], 2)} | 0 | – | – | – |",
    ]
    for row in sub["app"]:
        share = row["rate"]["median"] / ceiling
        lines.append(
            f"| app, {row['workers']} sync workers, {row['connections']} connections | {_d(row['rate'])} | "
            f"{100 * share:.0f} % | {_d(row['p50_ms'], 1)} | {_d(row['p99_ms'], 1)} | {row['errors']} | "
            f"{row['ok']:,} / {row['stored']:,} | {row['app_cpu_ms']:.2f} · {row['pg_cpu_ms']:.2f} · "
            f"{row['generator_cpu_ms']:.2f} | {row['machine_busy_share']:.0f} % |"
        )
    best = max(sub["app"], key=lambda r: r["rate"]["median"])
    at16 = [r for r in sub["app"] if r["connections"] == 16]
    p99_16 = min((r["p99_ms"]["median"] for r in at16), default=float("nan"))
    errors = sum(r["errors"] for r in sub["app"])
    restarts = sum(r["worker_restarts"] for r in sub["app"])
    generator = max(r["generator_cpu_share"] for r in sub["app"])
    lines += [
        "",
        f"Targets: throughput ≥ {100 * SUBMIT_SHARE:.0f} % of the ceiling — best "
        f"{100 * best['rate']['median'] / ceiling:.0f} % ({best['workers']} workers, {best['connections']} "
        f"connections): {_verdict(best['rate']['median'] >= SUBMIT_SHARE * ceiling)}; p99 < {SUBMIT_P99_MS:.0f} ms "
        f"at 16 connections — best {p99_16:.1f} ms: {_verdict(p99_16 < SUBMIT_P99_MS)}; zero errors — {errors}: "
        f"{_verdict(errors == 0)}.",
        f"The load generator used at most {generator:.0f} % of one core; gunicorn replaced {restarts} workers "
        "during the measured runs (`max_requests`).",
        "",
    ]
    if sub.get("sqlite"):
        lines += [
            "**SQLite, the embedded default** (a fresh file in WAL mode, same app, load and runs; no server, so "
            "the database's work is inside the app's CPU):",
            "",
            "| setup | responses/s | of SQLite's own | p50 ms | p99 ms | errors | 201s / stored | CPU ms/response app |",  # noqa: E501
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        own = sub.get("sqlite_ceiling")
        if own:
            lines.append(
                f"| **SQLite's own**: the same transaction, raw `sqlite3`, 2 processes | {_d(own['rate'])} | 100 % | "
                f"{_d(own['p50_ms'], 2)} | {_d(own['p99_ms'], 2)} | 0 | – | – |"
            )
        for row in sub["sqlite"]:
            share = f"{100 * row['rate']['median'] / own['rate']['median']:.0f} %" if own else "–"
            lines.append(
                f"| SQLite, {row['workers']} sync workers, {row['connections']} connections | {_d(row['rate'])} | "
                f"{share} | {_d(row['p50_ms'], 1)} | {_d(row['p99_ms'], 1)} | {row['errors']} | {row['ok']:,} / "
                f"{row['stored']:,} | {row['app_cpu_ms']:.2f} |"
            )
        best_sqlite = max(row["rate"]["median"] for row in sub["sqlite"])
        lines += [
            "",
            f"Target: SQLite submissions ≥ {SQLITE_SUBMIT:,} /s — best {best_sqlite:,.0f} /s: "
            f"{_verdict(best_sqlite >= SQLITE_SUBMIT)}.",
            "",
        ]
    return lines


def results_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## 2. Results",
        "",
        "Inside an app context: `compute_public` (overall and every allowed breakdown, disclosure control) and "
        "`staff_results(…, 'community')`, next to the **bare GROUP BY queries** those calls send, recorded "
        "and replayed alone on the raw connection (`fetchall`, no Python). Peak memory is the child "
        "process's peak resident set (`VmHWM`) during the measured runs; its resident size after start-up "
        "(imports, app) is given for comparison. The stored snapshot is served with "
        "`GET /api/v1/questionnaires/dialogue_2022/results` over the test client, 200 requests after 20 "
        "warm-ups.",
        "",
        "| responses | runs | public results s | bare GROUP BY s (queries) | ratio | staff, community s | bare s (queries) | ratio | peak RSS (after start-up) |",  # noqa: E501
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in data["results"].items():
        pub, pub_bare = r["public"]["seconds"], r["public_bare"]["seconds"]
        stf, stf_bare = r["staff"]["seconds"], r["staff_bare"]["seconds"]
        lines.append(
            f"| {_size(size)} | {r['runs']} | {_s(pub)} | {_s(pub_bare)} ({r['public_bare']['statements']}) | "
            f"{_median(pub) / _median(pub_bare):.2f}× | {_s(stf)} | {_s(stf_bare)} ({r['staff_bare']['statements']}) "
            f"| {_median(stf) / _median(stf_bare):.2f}× | {_mib(max(r['public']['peak_rss'], r['staff']['peak_rss']))}"
            f" ({_mib(r['rss_after_start'])}) |"
        )
    lines += [
        "",
        "The same counts **without answer profiles** (the form research/perf-ceilings.md §6 measured "
        "fastest before: grouped by ids straight from `answers`, the breakdown group from a self-join on the "
        "respondent's answer row, two statements per breakdown), in the same run:",
        "",
        "| responses | public: without profiles s (queries) | app's SQL / that | app / that | staff: without profiles s | app's SQL / that |",  # noqa: E501
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in data["results"].items():
        if "public_join" not in r:
            continue
        joined, staff_joined = r["public_join"]["seconds"], r["staff_join"]["seconds"]
        lines.append(
            f"| {_size(size)} | {_s(joined)} ({r['public_join']['statements']}) | "
            f"{_median(r['public_bare']['seconds']) / _median(joined):.2f}× | "
            f"{_median(r['public']['seconds']) / _median(joined):.2f}× | {_s(staff_joined)} | "
            f"{_median(r['staff_bare']['seconds']) / _median(staff_joined):.2f}× |"
        )
    lines += [
        "",
        "| responses | taking a snapshot s (compute_public + storing) | serving it, overall: p50 / p99 ms | by community: p50 / p99 ms | body bytes (overall / community) |",  # noqa: E501
        "|---:|---:|---:|---:|---:|",
    ]
    for size, r in data["results"].items():
        o, c = r["snapshot_overall"], r["snapshot_community"]
        lines.append(
            f"| {_size(size)} | {_median(r['public']['seconds']):.2f} + {r['snapshot_store_seconds']:.2f} | "
            f"{o['p50_ms']:.1f} / {o['p99_ms']:.1f} | "
            f"{c['p50_ms']:.1f} / {c['p99_ms']:.1f} | {o['bytes']:,} / {c['bytes']:,} |"
        )
    largest = max(data["results"], key=int)
    r = data["results"][largest]
    ratio = _median(r["public"]["seconds"]) / _median(r["public_bare"]["seconds"])
    p99 = max(r["snapshot_overall"]["p99_ms"], r["snapshot_community"]["p99_ms"])
    lines += [
        "",
        f"Targets at {_size(largest)} responses: results within {RESULTS_RATIO}× the bare GROUP BY queries — "
        f"{ratio:.2f}×: {_verdict(ratio <= RESULTS_RATIO)}; snapshot p99 < {SNAPSHOT_P99_MS:.0f} ms — "
        f"{p99:.1f} ms: {_verdict(p99 < SNAPSHOT_P99_MS)}. (The ratio says how much Python adds to the app's own "
        "SQL; whether that SQL is fast is the table above: the same counts without answer profiles.)",
        "",
    ]
    return lines


def sqlite_results_section(data: dict[str, Any]) -> list[str]:
    found = data["results_sqlite"]
    lines = [
        "**SQLite, the embedded default**: the same generated responses copied into a fresh SQLite file "
        "(migrated and seeded as `make run` does, no ANALYZE), the same child and measurements.",
        "",
        "| responses | runs | public results s | bare GROUP BY s (queries) | staff, community s | snapshot p99 ms | peak RSS |",  # noqa: E501
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in found.items():
        lines.append(
            f"| {_size(size)} | {r['runs']} | {_s(r['public']['seconds'])} | {_s(r['public_bare']['seconds'])} "
            f"({r['public_bare']['statements']}) | {_s(r['staff']['seconds'])} | "
            f"{max(r['snapshot_overall']['p99_ms'], r['snapshot_community']['p99_ms']):.1f} | "
            f"{_mib(max(r['public']['peak_rss'], r['staff']['peak_rss']))} |"
        )
    largest = max(found, key=int)
    slowest = max(_median(found[largest]["public"]["seconds"]), _median(found[largest]["staff"]["seconds"]))
    lines += [
        "",
        f"Target: SQLite results at {_size(largest)} responses under {SQLITE_RESULTS_S:.0f} s — {slowest:.2f} s "
        f"(the slower of public and staff): {_verdict(slowest < SQLITE_RESULTS_S)}.",
        "",
    ]
    return lines


def exports_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## 3. Exports",
        "",
        "`survey.exports.services.export_responses` of every response to a sink that only counts bytes, one "
        "child process per format and size; the reference is PostgreSQL's `COPY (the same pivot query) TO "
        "STDOUT WITH (FORMAT csv, HEADER)` through psycopg (the pivot statement recorded from a CSV export). "
        "Peak memory is the child's peak resident set during the measured runs (resident size after start-up "
        "in brackets).",
        "",
        "| responses | format | runs | seconds | rows/s | vs COPY | peak RSS (after start-up) | output |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, formats in data["exports"].items():
        if "copy" not in formats:
            continue
        copy = _median(formats["copy"]["seconds"])
        for fmt, e in formats.items():
            seconds = _median(e["seconds"])
            rows = e.get("rows", int(size))
            name = "**COPY** (reference)" if fmt == "copy" else fmt.upper()
            output = f"{e['bytes'] / MIB:,.0f} MiB, {e.get('columns', '?')} columns" if "bytes" in e else "–"
            lines.append(
                f"| {_size(size)} | {name} | {e['runs']}{'' if e['warmup'] else ' (no warm-up)'} | "
                f"{_s(e['seconds'])} | {rows / seconds:,.0f} | {seconds / copy:.1f}× | "
                f"{_mib(e['peak_rss'])} ({_mib(e['rss_after_start'])}) | {output} |"
            )
    complete = [s for s, f in data["exports"].items() if "copy" in f and "csv" in f]
    worst = {
        fmt: max(f[fmt]["peak_rss"] for f in data["exports"].values() if fmt in f)
        for fmt in ("csv", "xlsx", "sav")
        if any(fmt in f for f in data["exports"].values())
    }
    if complete:
        largest = max(complete, key=int)
        formats = data["exports"][largest]
        csv_ratio = _median(formats["csv"]["seconds"]) / _median(formats["copy"]["seconds"])
        lines += [
            "",
            f"Targets at {_size(largest)}: CSV within {CSV_RATIO:.0f}× of COPY — {csv_ratio:.1f}×: "
            f"{_verdict(csv_ratio <= CSV_RATIO)}; peak memory under {_mib(EXPORT_MEMORY)} at every size — "
            + "; ".join(f"{fmt.upper()} {_mib(v)}: {_verdict(v < EXPORT_MEMORY)}" for fmt, v in worst.items())
            + ".",
        ]
    lines.append("")
    return lines


def scaling_section(data: dict[str, Any]) -> list[str]:
    sizes = [s for s in data["results"] if s in data["exports"] and len(data["exports"][s]) == 4]
    if not sizes:
        return []
    header = "| figure | " + " | ".join(_size(s) for s in sizes) + " |"
    lines = ["## 4. Scaling", "", "Medians; how each cost grows with the number of responses.", "", header]
    lines.append("|---|" + "---:|" * len(sizes))

    def row(label: str, values: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("generated answer rows", [f"{data['data'][s]['answers']:,}" for s in sizes])
    row("tables + indexes", [_mib(data["data"][s]["bytes"]) for s in sizes])
    row("public results s", [f"{_median(data['results'][s]['public']['seconds']):.2f}" for s in sizes])
    row("their bare GROUP BY s", [f"{_median(data['results'][s]['public_bare']['seconds']):.2f}" for s in sizes])
    row("without profiles s", [f"{_median(data['results'][s]['public_join']['seconds']):.2f}" for s in sizes])
    row("staff results (community) s", [f"{_median(data['results'][s]['staff']['seconds']):.2f}" for s in sizes])
    row("snapshot serving p99 ms", [f"{data['results'][s]['snapshot_overall']['p99_ms']:.1f}" for s in sizes])
    for fmt in ("copy", "csv", "xlsx", "sav"):
        row(
            f"export {fmt.upper() if fmt != 'copy' else 'COPY'} s",
            [f"{_median(data['exports'][s][fmt]['seconds']):.1f}" for s in sizes],
        )
    for fmt in ("csv", "xlsx", "sav"):
        row(f"export {fmt.upper()} peak RSS", [_mib(data["exports"][s][fmt]["peak_rss"]) for s in sizes])
    lines.append("")
    return lines


def noise_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "## Noise",
        "",
        "CPU used by other processes on this shared machine (not this run's, not PostgreSQL's), sampled every "
        "2 s, in % of one core; and how far the runs of each benchmark spread ((max − min) / median).",
        "",
        "| phase | seconds | foreign CPU mean (p90) |",
        "|---|---:|---:|",
    ]
    for name, record in data["phases"].items():
        lines.append(f"| {name} | {record.get('seconds', 0):.0f} | {_foreign(record)} |")
    spreads = []
    if "submit" in data:
        spreads = [Summary.of(row["rate"]["runs"]).spread for row in data["submit"]["app"]]
        spreads.append(Summary.of(data["submit"]["ceiling"]["rate"]["runs"]).spread)
    for r in data["results"].values():
        keys = ("public", "public_bare", "public_join", "staff", "staff_bare", "staff_join")
        spreads += [Summary.of(r[k]["seconds"]).spread for k in keys]
    for formats in data["exports"].values():
        spreads += [Summary.of(e["seconds"]).spread for e in formats.values()]
    total = data.get("foreign_cpu")
    lines += [
        "",
        f"Whole run: foreign CPU {_foreign({'foreign_cpu': total})}; spread of the runs: median "
        f"{100 * statistics.median(spreads or [0]):.0f} %, largest {100 * max(spreads or [0]):.0f} %.",
        "",
    ]
    speed = data.get("machine_speed") or {}
    if speed:
        moments = " and at the end ".join(
            f"{speed[moment]['loop']:.0f} ns per step of a plain loop, {speed[moment]['memory']:.0f} ns per "
            "read at a random place of a large list"
            for moment in ("start", "end")
            if moment in speed
        )
        lines += [
            f"Machine speed (lower is faster), at the start of the run {moments}. The app's absolute "
            "figures move with the machine; its ratios to references measured "
            "in the same run much less.",
            "",
        ]
    return lines


def _budget(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds else "none"


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    settings = ", ".join(f"{k} {v}" for k, v in sorted(m["postgresql_settings"].items()))
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        f"# Benchmark report ({data['mode']} mode)",
        "",
        f"Run {data['started']}, {data['seconds'] / 60:.1f} min, by `make bench{' QUICK=1' if data['mode'] == 'quick' else ''}`. "  # noqa: E501
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}; Python {m['python']}; "
        f"PostgreSQL {m['postgresql']} ({settings}); {packages}. Load generator: {m['load_generator']}. "
        f"Budget per benchmark and size: {_budget(data['budget'])}.",
        "",
        "Figures are medians of the measured runs, min–max in brackets.",
        "",
    ]
    if data.get("errors"):
        lines += ["**Failed benchmarks** (the rest of the run went on):", ""]
        lines += [f"- {e['benchmark']}: `{e['error'].strip().splitlines()[-1][:300]}`" for e in data["errors"]]
        lines.append("")
    if "submit" in data:
        lines += submission_section(data)
    if data["results"]:
        lines += results_section(data)
    if data.get("results_sqlite"):
        lines += sqlite_results_section(data)
    if any("copy" in formats for formats in data["exports"].values()):
        lines += exports_section(data)
    if data["results"] and data["exports"]:
        lines += scaling_section(data)
    lines += noise_section(data)
    return "\n".join(lines)


def summary(data: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    sub = data.get("submit", {"ceiling": {"rate": {"median": float("nan")}}, "app": []})
    ceiling = sub["ceiling"]["rate"]["median"]
    out = [f"submission ceiling {ceiling:,.0f}/s"]
    for row in sub["app"]:
        out.append(
            f"  app w{row['workers']} c{row['connections']}: {row['rate']['median']:,.0f}/s "
            f"({100 * row['rate']['median'] / ceiling:.0f} %), p99 {row['p99_ms']['median']:.1f} ms, "
            f"errors {row['errors']}"
        )
    for size, r in data["results"].items():
        out.append(
            f"results {_size(size)}: public {_median(r['public']['seconds']):.2f} s vs bare "
            f"{_median(r['public_bare']['seconds']):.2f} s; snapshot p99 {r['snapshot_overall']['p99_ms']:.1f} ms"
        )
    for size, r in data.get("results_sqlite", {}).items():
        out.append(
            f"results on SQLite {_size(size)}: public {_median(r['public']['seconds']):.2f} s, "
            f"staff {_median(r['staff']['seconds']):.2f} s"
        )
    for size, formats in data["exports"].items():
        if "copy" not in formats:
            continue
        copy = _median(formats["copy"]["seconds"])
        out.append(
            f"exports {_size(size)}: "
            + ", ".join(
                f"{fmt} {_median(e['seconds']):.1f} s ({_median(e['seconds']) / copy:.1f}× COPY, {_mib(e['peak_rss'])})"
                for fmt, e in formats.items()
            )
        )
    return "\n".join(out)
