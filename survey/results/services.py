"""Results: tables from the SQL aggregates, through disclosure control, kept in snapshots.

Public results come only from a stored snapshot, taken when the snapshot rule allows it (enough new
responses and time, or at close) for the overall table and every allowed breakdown at once, so the
same snapshot always gives byte-identical output. Staff results are live, with exact counts and the
analyst's statistics, but the same group gate.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.orm import defer

from survey.accounts.models import User
from survey.accounts.services import now, record
from survey.db import db, read_only_transaction, unit_of_work
from survey.errors import (
    BreakdownInvalidError,
    NothingPublishedError,
    ResultsNotPublicError,
    SnapshotTooLargeError,
)
from survey.questionnaires.definition import breakdown_codes, iter_questions
from survey.questionnaires.models import Questionnaire
from survey.questionnaires.services import (
    catalog_by_id,
    current_version,
    get_questionnaire,
    newest_version_id,
    today,
)
from survey.questionnaires.types import get_type
from survey.results import disclosure, statistics
from survey.results.disclosure import CellCount, DisclosureRules, GroupCount, QuestionTable
from survey.results.models import ResultSnapshot
from survey.results.queries import ALL, OVERALL, Aggregate, QuestionCounts, aggregate, count_responses

NUMBER_BINS = 10
RESULT_BODIES_KEPT = 64  # serialised public bodies kept per process (snapshot × breakdown)


def rules() -> DisclosureRules:
    return DisclosureRules.from_mapping(current_app.config)


def breakdowns(definition: dict[str, Any]) -> list[str]:
    """The allowed breakdowns: the questions flagged ``demographic`` (DESIGN §4)."""
    return list(breakdown_codes(definition))


def tabulated_questions(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every question that has results (the consent question is everyone's "yes")."""
    return [q for section, q in iter_questions(definition) if section != "consent"]


def _cells(spec: dict[str, Any], counts: QuestionCounts, group: str | None) -> tuple[CellCount, ...]:
    """Every possible cell of the question for one group, zeros included (leaving them out would disclose)."""
    kind = get_type(spec["type"])
    found = counts.cells
    if spec["type"] == "matrix":
        points = [o.code for o in kind.options(spec)]
        return tuple(
            CellCount(point, found[(group, row, point, None)], row=row) for row in kind.items(spec) for point in points
        )
    if spec["type"] == "ranking":
        ranks = range(1, (spec.get("max_ranked") or len(spec["options"])) + 1)
        return tuple(
            CellCount(o.code, found[(group, None, o.code, rank)], rank=rank)
            for o in kind.options(spec)
            for rank in ranks
        )
    if spec["type"] in ("rating", "number"):
        values = _value_cells(spec, counts.numbers.get(group, {}))
        extra = [CellCount(o.code, found[(group, None, o.code, None)]) for o in kind.options(spec)]
        return tuple(values + extra)
    if spec["type"] == "text":
        return ()
    return tuple(CellCount(o.code, found[(group, None, o.code, None)]) for o in kind.options(spec))


def _value_cells(spec: dict[str, Any], values: dict[float, int]) -> list[CellCount]:
    """A rating's scale points, or a number's bins over its declared range."""
    if spec["type"] == "rating":
        low, high, step = (spec["range"][k] for k in ("min", "max", "step"))
        return [CellCount(str(v), values.get(float(v), 0)) for v in range(low, high + 1, step)]
    low, high = spec["min"], spec["max"]
    width = (high - low) / NUMBER_BINS or 1
    bins = [0] * NUMBER_BINS
    for value, count in values.items():
        bins[min(int((value - low) / width), NUMBER_BINS - 1)] += count
    return [CellCount(f"{_fmt(low + i * width)}–{_fmt(low + (i + 1) * width)}", bins[i]) for i in range(NUMBER_BINS)]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _table_type(spec: dict[str, Any]) -> str:
    # A number question without a declared range cannot be binned without revealing its extremes.
    if spec["type"] == "number" and (spec.get("min") is None or spec.get("max") is None):
        return "text"
    return spec["type"]


def question_tables(definition: dict[str, Any], data: Aggregate, groups: list[str]) -> list[QuestionTable]:
    tables = []
    for spec in tabulated_questions(definition):
        counts = data.questions.get(spec["code"], QuestionCounts(spec["code"]))
        kind = _table_type(spec)
        shaped = {**spec, "type": "text"} if kind == "text" else spec

        def group(code: str, key: str | None, counts: QuestionCounts = counts, shaped: dict = shaped) -> GroupCount:
            return GroupCount(code, counts.answered.get(key, 0), _cells(shaped, counts, key))

        overall = group(ALL, ALL)
        breakdown = tuple(group(code, code) for code in groups)
        tables.append(QuestionTable(spec["code"], kind, overall, breakdown))
    return tables


def tables_for(
    definition: dict[str, Any], counted: dict[str, Aggregate], breakdown: str | None
) -> tuple[Aggregate, list[QuestionTable]]:
    """The question tables for one breakdown (or none) of ``counted`` (from :func:`aggregate`), each
    with the true overall table beside it."""
    overall = counted[OVERALL]
    overall_tables = question_tables(definition, overall, [])
    if not breakdown:
        return overall, overall_tables
    data = counted[breakdown]
    groups = [o.code for o in get_type("single_choice").options(_question(definition, breakdown))]
    by_group = question_tables(definition, data, groups)
    tables = [QuestionTable(t.code, t.type, o.overall, t.groups) for t, o in zip(by_group, overall_tables, strict=True)]
    return data, tables


def compute_public(questionnaire: Questionnaire) -> dict[str, Any]:
    """Disclosure-controlled results for the overall table and every allowed breakdown."""
    definition = current_version(questionnaire).definition  # type: ignore[union-attr]
    active = rules()
    allowed = breakdowns(definition)
    counted = aggregate(questionnaire, allowed)
    output: dict[str, Any] = {}
    for breakdown in [OVERALL, *allowed]:
        _data, tables = tables_for(definition, counted, breakdown)
        output[breakdown] = disclosure.protect_results(counted[OVERALL].total, tables, active)
    return output


def _question(definition: dict[str, Any], code: str) -> dict[str, Any]:
    return next(q for _s, q in iter_questions(definition) if q["code"] == code)


def latest_snapshot(questionnaire: Questionnaire) -> ResultSnapshot | None:
    """The snapshot in force, its results (all breakdowns: large) loaded only when read."""
    return db.session.scalar(
        select(ResultSnapshot)
        .options(defer(ResultSnapshot.results))
        .where(ResultSnapshot.questionnaire_id == questionnaire.id)
        .order_by(ResultSnapshot.id.desc())
        .limit(1)
    )


def refresh_snapshot(
    questionnaire: Questionnaire, force: bool = False, actor: User | None = None, in_request: bool = True
) -> ResultSnapshot | None:
    """Take a new snapshot if the rule allows (or ``force``, staff only); return the one in force.

    Counting the responses is the costly part of the rule at a million responses, so it is done
    only when the rule could be met: not before ``SNAPSHOT_MIN_HOURS`` of an open survey, and, once
    a count found too few new responses, not again in this process for ``SNAPSHOT_RECHECK_SECONDS``
    (a snapshot taken a little later than allowed is always safe: the rule sets minimums).

    Computing one takes minutes at a million responses, longer than anyone waits for a page: while
    serving a request (``in_request``) it is done only up to ``SNAPSHOT_INLINE_MAX_RESPONSES``; beyond,
    the snapshot in force stays until ``flask survey snapshot --due`` (run by a timer) takes the next.
    Snapshots of one questionnaire are taken one at a time, whatever the number of workers: two taken
    moments apart would differ by a handful of respondents, which is what the rule forbids.
    """
    latest = latest_snapshot(questionnaire)
    if latest is None and newest_version_id(questionnaire) is None:
        raise NothingPublishedError(f"Nothing of {questionnaire.code!r} is published yet.")
    closed = questionnaire.effective_status(today()) in ("closed", "archived")
    hours = None
    checked: dict[tuple[int, bool], float] = current_app.extensions["survey"]["snapshot_checks"]
    if latest is not None:
        taken_at = latest.taken_at if latest.taken_at.tzinfo else latest.taken_at.replace(tzinfo=now().tzinfo)
        hours = (now() - taken_at).total_seconds() / 3600
        if not force and (
            (not closed and hours < rules().SNAPSHOT_MIN_HOURS)
            or (  # a command (not a request) always counts afresh
                in_request
                and time.monotonic() - checked.get((latest.id, closed), -math.inf)
                < current_app.config["SNAPSHOT_RECHECK_SECONDS"]
            )
        ):
            return latest
    responses = count_responses(questionnaire)
    due = disclosure.snapshot_due(
        responses=responses,
        responses_at_last=latest.responses if latest else None,
        hours_since_last=hours,
        closed=closed,
        rules=rules(),
    )
    wanted = due or (force and responses != (latest.responses if latest else None))
    too_large = in_request and responses > current_app.config["SNAPSHOT_INLINE_MAX_RESPONSES"]
    if wanted and too_large and force:
        raise SnapshotTooLargeError(
            f"{responses} responses take too long to tabulate while a request waits; "
            f"run `flask survey snapshot {questionnaire.code}` on the server."
        )
    if not wanted or too_large:
        if latest is not None:
            checked[(latest.id, closed)] = time.monotonic()
        return latest
    with read_only_transaction():  # minutes at a million responses: SQLite's writers must not wait
        results = compute_public(questionnaire)
    with unit_of_work():
        _one_snapshot_at_a_time(questionnaire)
        newest = latest_snapshot(questionnaire)
        if newest is not None and (latest is None or newest.id != latest.id):
            return newest  # another worker took it while this one counted
        snapshot = ResultSnapshot(
            questionnaire_id=questionnaire.id,
            taken_at=now(),
            taken_on=today(),
            responses=responses,
            version=current_version(questionnaire).number,  # type: ignore[union-attr]
            results=results,
        )
        db.session.add(snapshot)
        if actor is not None or force:
            record(actor, "results.snapshot", "questionnaire", questionnaire.code, responses=responses)
    return snapshot


SNAPSHOT_LOCK = 7301  # the first key of PostgreSQL's advisory lock; the questionnaire id is the second


def _one_snapshot_at_a_time(questionnaire: Questionnaire) -> None:
    """Hold, until the transaction ends, the lock that snapshot takers of this questionnaire share.

    An advisory lock, not a row lock, so that submissions (which key-share the questionnaire row)
    and staff edits are never held up by a long snapshot; it is taken after the counting, so two
    workers may count at once, but the second then finds the first one's snapshot and keeps it.
    SQLite has one writer at a time anyway.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            text("SELECT pg_advisory_xact_lock(:kind, :questionnaire)"),
            {"kind": SNAPSHOT_LOCK, "questionnaire": questionnaire.id},
        )


def public_results(code: str, breakdown: str | None) -> dict[str, Any]:
    """The public results of a questionnaire whose results are public (DESIGN §5 "Results shape")."""
    questionnaire = _public_questionnaire(code)
    return snapshot_results(questionnaire, breakdown)


def public_results_json(code: str, breakdown: str | None) -> bytes:
    """:func:`public_results` as the bytes of the API's JSON body.

    A snapshot never changes, so its body for a breakdown is serialised once per process and then
    served as stored: the same snapshot always gives byte-identical output, in microseconds.
    """
    questionnaire = _public_questionnaire(code)
    _check_breakdown(_definition(questionnaire), breakdown)
    snapshot = refresh_snapshot(questionnaire)
    cache: dict[tuple[Any, ...], bytes] = current_app.extensions["survey"]["result_bodies"]
    key = (snapshot.id, snapshot.taken_at, breakdown) if snapshot is not None else None
    body = cache.get(key) if key is not None else None
    if body is None:
        from survey.results.schemas import PublicResultsSchema  # schemas import this module's names

        data = PublicResultsSchema().dump(_results_body(questionnaire, breakdown, snapshot))
        body = current_app.json.response(data).get_data()  # exactly what jsonify would send
        if key is not None:
            while len(cache) >= RESULT_BODIES_KEPT:
                cache.pop(next(iter(cache)))
            cache[key] = body
    return body


def snapshot_results(questionnaire: Questionnaire, breakdown: str | None) -> dict[str, Any]:
    """The results in the snapshot in force (taking a new one when the rule allows)."""
    _check_breakdown(_definition(questionnaire), breakdown)
    return _results_body(questionnaire, breakdown, refresh_snapshot(questionnaire))


def _results_body(questionnaire: Questionnaire, breakdown: str | None, snapshot: ResultSnapshot | None) -> dict:
    body: dict[str, Any] = {"questionnaire": questionnaire.code, "breakdown": breakdown or None}
    if snapshot is None:
        version = current_version(questionnaire)
        return {
            **body,
            "version": version.number if version else None,
            "status": disclosure.STATUS_NOT_YET,
            "snapshot": None,
            "questions": [],
        }
    result = snapshot.results.get(breakdown or OVERALL)
    if result is None:  # a breakdown added by a newer version than the snapshot: wait for the next one
        result = {"status": disclosure.STATUS_NOT_YET, "n": None, "questions": []}
    return {
        **body,
        "version": snapshot.version,
        "status": result["status"],
        "snapshot": {"taken_on": snapshot.taken_on, "n": result["n"]},
        "questions": result["questions"],
    }


def _public_questionnaire(code: str) -> Questionnaire:
    questionnaire = get_questionnaire(code)
    if not questionnaire.results_public or newest_version_id(questionnaire) is None:
        raise ResultsNotPublicError(f"The results of {code!r} are not public.")
    return questionnaire


def _definition(questionnaire: Questionnaire) -> dict[str, Any]:
    """The newest published definition, parsed once per process (it is over 100 kB of JSON)."""
    version_id = newest_version_id(questionnaire)
    if version_id is None:
        raise NothingPublishedError(f"Nothing of {questionnaire.code!r} is published yet.")
    return catalog_by_id(version_id).definition


def _check_breakdown(definition: dict[str, Any], breakdown: str | None) -> None:
    allowed = breakdowns(definition)
    if breakdown and breakdown not in allowed:
        raise BreakdownInvalidError(
            "That breakdown is not offered.", {"breakdown": [f"Must be one of: {', '.join(allowed) or 'none'}."]}
        )


def staff_results(code: str, breakdown: str | None) -> dict[str, Any]:
    """Live results for staff: exact counts and statistics, with the same group gate and filter rule.

    Counted in a read-only transaction: on SQLite a long count must not hold the write lock that
    submissions wait for."""
    with read_only_transaction():
        return _staff_results(code, breakdown)


def _staff_results(code: str, breakdown: str | None) -> dict[str, Any]:
    questionnaire = get_questionnaire(code)
    version = current_version(questionnaire)
    if version is None:
        raise NothingPublishedError(f"Nothing of {code!r} is published yet.")
    _check_breakdown(version.definition, breakdown)
    counted = aggregate(questionnaire, [breakdown] if breakdown else [])
    data, tables = tables_for(version.definition, counted, breakdown or None)
    active = rules()
    specs = {q["code"]: q for q in tabulated_questions(version.definition)}
    questions = []
    for table in tables:
        shown = disclosure.staff_table(table, active)
        for group in shown["groups"]:
            if group["n"] is not None and (
                not breakdown or group["group"] in data.questions.get(table.code, QuestionCounts("")).answered
            ):
                group["statistics"] = _statistics(
                    specs[table.code], data.questions.get(table.code), group["group"], breakdown
                )
        questions.append(shown)
    return {
        "questionnaire": code,
        "version": version.number,
        "responses": data.total,
        "breakdown": breakdown or None,
        "questions": questions,
    }


def _statistics(
    spec: dict[str, Any], counts: QuestionCounts | None, group: str, breakdown: str | None
) -> dict[str, Any]:
    """Mean, median and top-two share (substantive answers only), ranking summaries, Wilson intervals."""
    if counts is None:
        return {}
    key = group if breakdown else ALL
    n = counts.answered.get(key, 0)
    stats: dict[str, Any] = {}
    kind = get_type(spec["type"])
    if spec["type"] in ("likert", "single_choice") and (spec["type"] == "likert" or spec.get("ordinal")):
        values = {o.code: o.value for o in kind.options(spec) if o.value is not None and not o.non_substantive}
        counted = {values[c]: counts.cells[(key, None, c, None)] for c in values}
        stats.update(_scale_stats(counted, sorted(values.values())))
    elif spec["type"] == "matrix":
        values = {o.code: o.value for o in kind.options(spec) if o.value is not None and not o.non_substantive}
        stats["rows"] = {
            row: _scale_stats({values[c]: counts.cells[(key, row, c, None)] for c in values}, sorted(values.values()))
            for row in kind.items(spec)
        }
    elif spec["type"] in ("rating", "number"):
        numbers = counts.numbers.get(key, {})
        stats.update({"mean": _round(statistics.mean(numbers)), "median": statistics.median(numbers)})
    elif spec["type"] == "ranking":
        stats["options"] = {}
        for option in kind.options(spec):
            ranks = {r: c for (g, _row, o, r), c in counts.cells.items() if g == key and o == option.code and r}
            first = ranks.get(1, 0)
            stats["options"][option.code] = {
                "ranked_first_share": _round(first / n) if n else None,
                "ranked_first_interval": _interval(first, n),
                "mean_rank": _round(statistics.mean_rank(ranks)),
            }
    if spec["type"] in ("single_choice", "likert", "multiple_choice") and n:
        stats["intervals"] = {o.code: _interval(counts.cells[(key, None, o.code, None)], n) for o in kind.options(spec)}
    return stats


def _scale_stats(counted: dict[float, int], scale: list[float]) -> dict[str, Any]:
    return {
        "mean": _round(statistics.mean(counted)),
        "median": statistics.median(counted),
        "top_two_share": _round(statistics.top_share(counted, scale[-2:])) if len(scale) >= 4 else None,
    }


def _interval(successes: int, trials: int) -> list[float] | None:
    found = statistics.wilson_interval(successes, trials)
    return [_round(found[0]), _round(found[1])] if found else None  # type: ignore[list-item]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
