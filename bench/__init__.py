"""The benchmark suite of issue 7: every hot path measured next to its physical ceiling, in the same run.

``make bench`` (full figures) or ``make bench QUICK=1`` (under two minutes, to check that it works) runs
``python -m bench``. It makes a PostgreSQL database of its own on 127.0.0.1:5432, builds it with the
migrations and seeds the shipped questionnaires, runs the benchmarks, writes ``bench/report.md`` and
drops the database again, also when something fails.

Modules:

- :mod:`bench.common` — statistics, the database of the run, child processes, CPU and memory probes;
- :mod:`bench.bodies` — varied valid answers to the op-ed questionnaire (``dialogue_2022``);
- :mod:`bench.submit` — submission throughput under gunicorn next to the single-statement insert ceiling;
- :mod:`bench.datagen` — responses and answers made directly in SQL (10k, 100k, 1M);
- :mod:`bench.child` — what runs inside a child process (results, exports), so that peak memory is its own;
- :mod:`bench.report` — the Markdown report.

This is not a test: nothing here asserts a time. See ``bench/RESULTS.md`` for the last full run.
"""
