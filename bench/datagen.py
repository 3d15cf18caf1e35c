"""Responses and answers made directly in SQL, for the results and export benchmarks.

The rows match the real schema and what :func:`survey.responses.services.submit_response` stores for
the op-ed questionnaire: one ``responses`` row (random UUID, version, language, channel, day, the
two hashes) and about twelve ``answers`` rows per response, with the question, option and matrix-row
ids of the seeded ``dialogue_2022`` version. The answers follow the same plan as
:func:`bench.bodies.random_answers` — the required questions, a multiple choice shown only to those
who heard of the agreements (``display_if``), a rating, a ranking, a likert, sometimes a text, and
the demographic questions used as breakdowns — with uneven, plausible distributions.

Every answer row carries its response's answer profile, made here in SQL the way
:mod:`survey.responses.profiles` makes it (the canonical JSON of the breakdown answers, its SHA-256's
first 8 bytes as a signed integer; :func:`check` confirms each stored profile's id with the app's code).

Everything is ``INSERT … SELECT`` over ``generate_series`` (no row passes through Python). The
foreign-key triggers are skipped for the load (``session_replication_role = replica``): the ids are
the catalog's own, which :func:`check` confirms afterwards with one join.
"""

# ruff: noqa: S608 - the SQL is built from the catalog's integer ids and constants, never from input

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from bench.common import log, migrate_and_seed

LANGUAGES = ("sq", "sr-Latn", "sr-Cyrl", "en")
TEXTS = ("Më shumë transparencë.", "Више транспарентности, молим.", "Publish the agreements in full.")
SKEW = 1.6  # earlier options are chosen more often: position = floor(random() ^ SKEW * n)
# The breakdown questions and the share of respondents who answer each, in the profile key's order.
DEMOGRAPHIC = (("age_band", 0.85), ("community", 0.9), ("gender", 0.85), ("residence_area", 1.0))


@dataclass(frozen=True)
class Catalog:
    questionnaire_id: int
    version_id: int
    questions: dict[str, int]  # code -> question id
    options: dict[str, list[int]]  # question code -> option ids in position order
    codes: dict[str, list[str]]  # question code -> option codes in position order
    option_codes: dict[tuple[str, str], int]  # (question code, option code) -> option id

    @classmethod
    def load(cls, connection: psycopg.Connection, code: str = "dialogue_2022") -> Catalog:
        questionnaire_id, version_id = connection.execute(
            "SELECT q.id, v.id FROM questionnaires q JOIN questionnaire_versions v ON v.questionnaire_id = q.id "
            "WHERE q.code = %s AND v.published_on IS NOT NULL ORDER BY v.number DESC LIMIT 1",
            (code,),
        ).fetchone()  # type: ignore[misc]
        questions = dict(
            connection.execute("SELECT code, id FROM questions WHERE version_id = %s", (version_id,)).fetchall()
        )
        options: dict[str, list[int]] = {}
        codes: dict[str, list[str]] = {}
        option_codes: dict[tuple[str, str], int] = {}
        for question, option, option_id in connection.execute(
            "SELECT q.code, o.code, o.id FROM options o JOIN questions q ON q.id = o.question_id "
            "WHERE q.version_id = %s ORDER BY q.code, o.position",
            (version_id,),
        ):
            options.setdefault(question, []).append(option_id)
            codes.setdefault(question, []).append(option)
            option_codes[(question, option)] = option_id
        return cls(questionnaire_id, version_id, questions, options, codes, option_codes)


def _array(ids: list[int]) -> str:
    return "ARRAY[" + ",".join(str(int(i)) for i in ids) + "]::int[]"


def _texts(values: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _skewed_pick(ids: list[int]) -> str:
    return f"({_array(ids)})[1 + floor(power(random(), {SKEW}) * {len(ids)})::int]"


def _new_responses(catalog: Catalog, count: int) -> str:
    """The temporary table ``bench_new``: each new response's id, breakdown answers (option codes,
    NULL when skipped), profile key and profile id."""
    picks = ", ".join(
        f"CASE WHEN random() < {share} THEN ({_texts(catalog.codes[code])})"
        f"[1 + floor(power(random(), {SKEW}) * {len(catalog.codes[code])})::int] END AS {code}"
        for code, share in DEMOGRAPHIC
    )
    pairs = ", ".join(
        f"""CASE WHEN {code} IS NOT NULL THEN '"{code}":"' || {code} || '"' END""" for code, _ in DEMOGRAPHIC
    )
    return (
        "CREATE TEMP TABLE bench_new AS SELECT k.*, "
        "('x' || left(encode(sha256(convert_to(k.profile, 'UTF8')), 'hex'), 16))::bit(64)::bigint AS profile_id "
        f"FROM (SELECT d.*, '{{' || concat_ws(',', {pairs}) || '}}' AS profile "
        f"FROM (SELECT gen_random_uuid() AS id, {picks} FROM generate_series(1, {int(count)})) AS d) AS k"
    )


def _statements(catalog: Catalog) -> list[str]:
    """The INSERTs that fill ``answers`` for the responses in the temporary table ``bench_new``."""
    q, o = catalog.questions, catalog.options

    def single(code: str, share: float = 1.0, ids: list[int] | None = None) -> str:
        where = f"WHERE random() < {share}" if share < 1 else ""
        return (
            "INSERT INTO answers (response_id, question_id, seq, option_id, profile_id) "
            f"SELECT id, {q[code]}, 0, {_skewed_pick(ids or o[code])}, profile_id FROM bench_new {where}"
        )

    def breakdown(code: str) -> str:
        """The breakdown answer drawn in ``bench_new`` (its profile holds it)."""
        return (
            "INSERT INTO answers (response_id, question_id, seq, option_id, profile_id) "
            f"SELECT id, {q[code]}, 0, ({_array(o[code])})[array_position({_texts(catalog.codes[code])}, {code})], "
            f"profile_id FROM bench_new WHERE {code} IS NOT NULL"
        )

    def consecutive(code: str, ids: list[int], source: str, ranked: bool) -> str:
        """1–3 distinct options (consecutive from a random start): a multiple choice or a ranking."""
        rank = "j + 1" if ranked else "NULL"
        return (
            "INSERT INTO answers (response_id, question_id, seq, option_id, rank, profile_id) "
            f"SELECT n.id, {q[code]}, j, ({_array(ids)})[1 + (n.start + j) % {len(ids)}], {rank}, n.profile_id "
            f"FROM (SELECT id, profile_id, floor(random() * {len(ids)})::int AS start, "
            "1 + floor(random() * 3)::int AS k "
            f"FROM {source}) AS n, generate_series(0, n.k - 1) AS j"
        )

    yes = catalog.option_codes[("agreements_heard", "yes")]
    heard_yes = (
        f"(SELECT b.id, b.profile_id FROM bench_new b JOIN answers a ON a.response_id = b.id "
        f"AND a.question_id = {q['agreements_heard']} AND a.option_id = {yes}) AS heard"
    )
    cant_say = catalog.option_codes[("transparency_rating", "cant_say")]
    texts = _texts(list(TEXTS))
    return [
        "INSERT INTO answer_profiles (questionnaire_id, id, breakdowns) "
        f"SELECT {catalog.questionnaire_id}, profile_id, min(profile)::json FROM bench_new GROUP BY profile_id "
        "ON CONFLICT DO NOTHING",
        single("consent_confirm", ids=[catalog.option_codes[("consent_confirm", "yes")]]),
        single("awareness_dialogue"),
        single("agreements_heard"),
        single("dialogue_support"),
        breakdown("residence_area"),
        consecutive("agreements_known", o["agreements_known"][:-1], heard_yes, ranked=False),
        "INSERT INTO answers (response_id, question_id, seq, option_id, number, profile_id) "
        f"SELECT id, {q['transparency_rating']}, 0, CASE WHEN u >= 0.9 THEN {cant_say} END, "
        f"CASE WHEN u < 0.9 THEN floor(random() * 11) END, profile_id "
        f"FROM (SELECT id, profile_id, random() AS u FROM bench_new WHERE random() < 0.9) AS n",
        consecutive("priorities_ranking", o["priorities_ranking"], "bench_new WHERE random() < 0.7", ranked=True),
        single("voice_heard", 0.8),
        "INSERT INTO answers (response_id, question_id, seq, text, profile_id) "
        f"SELECT id, {q['message_to_leaders']}, 0, ({texts})[1 + floor(random() * {len(TEXTS)})::int], profile_id "
        "FROM bench_new WHERE random() < 0.15",
        breakdown("community"),
        breakdown("age_band"),
        breakdown("gender"),
    ]


def count(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT count(*) FROM responses").fetchone()[0]  # type: ignore[index]


def grow_to(url: str, target: int, batch: int = 250_000) -> float:
    """Add generated responses until there are ``target``; return the seconds it took (VACUUM included)."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        catalog = Catalog.load(connection)
        statements = _statements(catalog)
        connection.execute("SET session_replication_role = replica")  # no FK triggers: ids are the catalog's
        connection.execute("SET synchronous_commit = off")
        have = connection.execute("SELECT count(*) FROM responses").fetchone()[0]  # type: ignore[index]
        while have < target:
            step = min(batch, target - have)
            with connection.transaction():
                connection.execute("DROP TABLE IF EXISTS bench_new")
                connection.execute(_new_responses(catalog, step))  # type: ignore[arg-type]
                connection.execute(
                    "INSERT INTO responses (id, questionnaire_id, version_id, language, channel, submitted_on, "
                    "submission_key, payload_hash) "
                    f"SELECT id, {catalog.questionnaire_id}, {catalog.version_id}, "
                    f"(ARRAY{list(LANGUAGES)!r})[1 + floor(random() * {len(LANGUAGES)})::int], "
                    "CASE WHEN random() < 0.8 THEN 'web' ELSE 'api' END, current_date - floor(random() * 60)::int, "
                    "encode(sha256(convert_to(id::text, 'UTF8')), 'hex'), md5(random()::text) || md5(id::text) "
                    "FROM bench_new"
                )
                for statement in statements:
                    connection.execute(statement)  # type: ignore[arg-type]
            have += step
            log(f"  data: {have:,} responses ({time.perf_counter() - started:.0f} s)")
        connection.execute("DROP TABLE IF EXISTS bench_new")
        connection.execute("VACUUM (ANALYZE) responses, answers")
    return time.perf_counter() - started


def check(url: str) -> dict[str, float]:
    """Rows per response, and that every answer points at a response and a question of the catalog."""
    with psycopg.connect(url) as connection:
        responses, answers, orphans = connection.execute(
            "SELECT (SELECT count(*) FROM responses), (SELECT count(*) FROM answers), "
            "(SELECT count(*) FROM answers a LEFT JOIN questions q ON q.id = a.question_id "
            " LEFT JOIN options o ON o.id = a.option_id "
            " WHERE q.id IS NULL OR (a.option_id IS NOT NULL AND o.question_id IS DISTINCT FROM a.question_id))"
        ).fetchone()  # type: ignore[misc]
        size = connection.execute(
            "SELECT pg_total_relation_size('answers') + pg_total_relation_size('responses')"
        ).fetchone()[0]  # type: ignore[index]
        profiles = connection.execute("SELECT id, breakdowns FROM answer_profiles").fetchall()
    if orphans:
        raise RuntimeError(f"{orphans} generated answers do not match the catalog")
    from survey.responses.profiles import profile_id

    wrong = [stored for stored, breakdowns in profiles if profile_id(breakdowns) != stored]
    if wrong:
        raise RuntimeError(f"{len(wrong)} generated profile ids differ from the app's")
    return {"responses": responses, "answers": answers, "rows_per_response": answers / max(responses, 1), "bytes": size}


def truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("TRUNCATE answers, answer_profiles, responses, result_snapshots")


# Copied to SQLite in this order, each column as the app's SQLite schema stores it.
_SQLITE_TABLES = (
    ("responses", "id, questionnaire_id, version_id, language, channel, submitted_on, submission_key, payload_hash"),
    ("answer_profiles", "questionnaire_id, id, breakdowns"),
    ("answers", "response_id, question_id, seq, item_id, option_id, number, text, rank, profile_id"),
)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex  # SQLAlchemy's Uuid on SQLite: 32 hex digits
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def copy_to_sqlite(url: str, sqlite_url: str, batch: int = 20_000) -> float:
    """The generated responses, profiles and answers of ``url`` copied into the SQLite database at
    ``sqlite_url`` (migrated and seeded, as ``make run`` does; its catalog ids must be PostgreSQL's)."""
    started = time.perf_counter()
    migrate_and_seed(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    catalog_sql = "SELECT id, version_id, code FROM questions ORDER BY id"
    with psycopg.connect(url) as source, contextlib.closing(sqlite3.connect(path)) as target:
        if source.execute(catalog_sql).fetchall() != target.execute(catalog_sql).fetchall():
            raise RuntimeError("the SQLite catalog's ids differ from PostgreSQL's")
        for table, columns in _SQLITE_TABLES:
            marks = ", ".join("?" for _ in columns.split(","))
            with source.cursor(name=f"copy_{table}") as cursor:
                cursor.execute(f"SELECT {columns} FROM {table}")  # type: ignore[arg-type]
                while rows := cursor.fetchmany(batch):
                    target.executemany(
                        f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                        [tuple(_sqlite_value(v) for v in row) for row in rows],
                    )
            target.commit()
    return time.perf_counter() - started
