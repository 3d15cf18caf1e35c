"""The dataset builder: columns per question type, values, versions, order, privacy options."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from survey.db import db
from survey.errors import ExportOptionsInvalidError, QuestionnaireNotFoundError
from survey.exports.dataset import ExportOptions, build_dataset
from survey.exports.writers.codebook import codebook_rows
from survey.questionnaires.definition import validate_definition
from survey.questionnaires.models import Question
from survey.questionnaires.services import add_version, create_questionnaire, publish_version, today
from survey.responses.models import Answer, Response
from tests.exports.conftest import (
    CODE,
    NAMES,
    PII_TEXT,
    expected_row,
    export_definition,
    make_questionnaire,
    sample_answers,
    submit,
)
from tests.factories import opt, t

Row = dict[str, Any]


def rows_of(options: ExportOptions | None = None, code: str = CODE) -> list[Row]:
    dataset = build_dataset(code, options)
    return [dict(zip(dataset.names, row, strict=True)) for row in dataset.rows()]


def multiset(rows: list[Row]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(sorted(row.items(), key=lambda item: item[0])) for row in rows)


def test_columns_follow_the_question_types(exported: list[Row]):
    dataset = build_dataset(CODE)
    assert dataset.names == NAMES
    kinds = {c.name: (c.kind, c.type) for c in dataset.columns}
    assert kinds["support"] == ("choice", "string")
    assert kinds["which__none"] == ("flag", "integer")
    assert kinds["grid__r2"] == ("choice", "string")
    assert kinds["priorities__rank3"] == ("rank", "string")
    assert kinds["score"] == ("rating", "integer")
    assert kinds["household"] == ("number", "integer")
    assert kinds["balance"] == ("number", "number")
    assert kinds["story"] == ("text", "string")
    assert kinds["day"] == ("meta", "date")
    support = dataset.column("support")
    assert [(c.value, c.code, c.missing) for c in support.categories] == [
        ("disagree", 1, False),
        ("neutral", 2, False),
        ("agree", 3, False),
        ("dont_know", -1, True),
    ]
    lean = dataset.column("lean")
    assert [(c.value, c.code, c.missing, c.anchor) for c in lean.categories] == [
        (-5, -5, False, True),
        (5, 5, False, True),
        ("cant_say", -6, True, False),
    ]
    assert (lean.minimum, lean.maximum) == (-5, 5)
    assert dataset.column("community").demographic and dataset.column("age").ordered


def test_labels_in_every_language(exported: list[Row]):
    dataset = build_dataset(CODE, ExportOptions(language="sq"))
    which_b = dataset.column("which__b")
    assert which_b.label("sq") == "Which? [sq] — b [sq]"
    assert which_b.short_label("sr-Cyrl") == "b [sr-Cyrl] — Which? [sr-Cyrl]"
    assert dataset.column("priorities__rank2").label("sr-Latn") == "Rank [sr-Latn] — 2. mesto"
    assert dataset.column("channel").label("sr-Cyrl") == "Канал"
    assert dataset.column("which__b").categories[1].label("sq") == "Zgjedhur"
    assert dataset.title_in("sr-Cyrl") == "All types [sr-Cyrl]"
    with pytest.raises(ExportOptionsInvalidError) as caught:
        build_dataset(CODE, ExportOptions(language="de"))
    assert "language" in (caught.value.errors or {})


def test_values_equal_the_submitted_answers(exported: list[Row]):
    assert multiset(rows_of()) == multiset(exported)


def test_sql_and_python_pivots_agree_row_for_row(exported: list[Row]):
    by_sql = build_dataset(CODE, ExportOptions(pivot="sql"))
    by_python = build_dataset(CODE, ExportOptions(pivot="python", batch_size=3))
    assert list(by_sql.rows()) == list(by_python.rows())
    assert by_sql.count_by(["community", "age"]) == by_python.count_by(["community", "age"])


def test_count_by_groups_in_the_database(exported: list[Row]):
    counts = build_dataset(CODE).count_by(["community", "language"])
    assert counts == Counter((row["community"], row["language"]) for row in exported)
    assert sum(counts.values()) == len(exported)


ITEMS = ["heard", "which__a", "which__none", "support", "grid__r2", "priorities__rank3"]


def profile_from_rows(rows: list[Row], names: list[str], items: list[str]) -> tuple[Counter[Any], dict, dict]:
    """What ``profile_by`` must find, computed from the expected rows."""
    counts: Counter[Any] = Counter()
    values: dict[Any, tuple[set[Any], ...]] = {}
    answered: dict[Any, list[int]] = {}
    for row in rows:
        combo = tuple(row[name] for name in names)
        counts[combo] += 1
        found = values.setdefault(combo, tuple(set() for _ in items))
        counted = answered.setdefault(combo, [0] * len(items))
        for index, item in enumerate(items):
            if row[item] is not None:
                found[index].add(row[item])
                counted[index] += 1
    return counts, values, answered


def test_profile_by_collects_distinct_values_per_combination(exported: list[Row]):
    profile = build_dataset(CODE).profile_by(["community", "age"], ITEMS)
    counts, values, answered = profile_from_rows(exported, ["community", "age"], ITEMS)
    assert profile.counts == counts
    assert profile.values == values
    assert profile.answered == answered
    assert any(len(found) >= 2 for sets in values.values() for found in sets)  # not a trivial fixture


@pytest.mark.parametrize("widest", [7, 30])
def test_profile_by_agrees_across_pivots_and_query_chunks(
    exported: list[Row], monkeypatch: pytest.MonkeyPatch, widest: int
):
    """A narrow select list splits the items over several queries; the result must not change."""
    from survey.exports import dataset as dataset_module

    items = [c.name for c in build_dataset(CODE).columns if c.kind in ("choice", "flag", "rank")]
    by_python = build_dataset(CODE, ExportOptions(pivot="python")).profile_by(["community"], items)
    monkeypatch.setattr(dataset_module, "SQL_PIVOT_MAX_VALUES", widest)
    by_sql = build_dataset(CODE, ExportOptions(pivot="sql")).profile_by(["community"], items)
    assert by_sql == by_python
    assert sum(by_sql.counts.values()) == len(exported)


def test_profile_by_without_names_or_items(exported: list[Row]):
    dataset = build_dataset(CODE)
    assert dataset.profile_by([]).counts == Counter({(): len(exported)})
    whole = dataset.profile_by([], ["support"])
    assert whole.values == {(): ({row["support"] for row in exported},)}
    with pytest.raises(ValueError, match="household"):
        dataset.profile_by(["community"], ["household"])  # a number: no fixed set of values


def test_rows_are_ordered_by_random_id_not_by_arrival(app: Flask):
    make_questionnaire(export_definition())
    for household in range(1, 21):
        submit(CODE, {**sample_answers(0), "household": household})
    exported = [row["household"] for row in rows_of()]
    stored = db.session.execute(
        select(Response.id, Answer.number).join(Answer).join(Question).where(Question.code == "household")
    ).all()
    by_id = [int(number) for _id, number in sorted(stored, key=lambda row: uuid.UUID(str(row[0])))]
    assert exported == by_id
    assert exported != list(range(1, 21))  # arrival order; equal by chance with probability 1/20!


def test_shuffled_order_is_new_for_each_export_and_keeps_every_row(app: Flask):
    make_questionnaire(export_definition())
    for household in range(1, 21):
        submit(CODE, {**sample_answers(0), "household": household})
    by_id = [row["household"] for row in rows_of()]
    orders = []
    for pivot in ("sql", "python", "sql"):
        dataset = build_dataset(CODE, ExportOptions(order="shuffled", pivot=pivot))
        first = [row[dataset.names.index("household")] for row in dataset.rows()]
        again = [row[dataset.names.index("household")] for row in dataset.rows()]
        assert first == again  # one export, one key: iterating twice gives the same order
        assert sorted(first) == list(range(1, 21))
        orders.append(first)
    assert len({tuple(order) for order in [*orders, by_id]}) == 4  # each equal by chance with p = 1/20!
    assert "shuffled" in build_dataset(CODE, ExportOptions(order="shuffled")).privacy["row_order"]


def test_free_text_scrubbed_raw_or_dropped(exported: list[Row]):
    scrubbed = {row["comment"] for row in rows_of()}
    assert "Call me on [phone] or write to [email]" in scrubbed and PII_TEXT not in scrubbed
    assert PII_TEXT in {row["comment"] for row in rows_of(ExportOptions(free_text="raw"))}
    dropped = build_dataset(CODE, ExportOptions(free_text="drop"))
    assert "comment" not in dropped.names and "story" not in dropped.names
    assert len(dropped.names) == len(NAMES) - 2


def test_month_precision(exported: list[Row]):
    dataset = build_dataset(CODE, ExportOptions(date_precision="month"))
    assert "day" not in dataset.names and dataset.column("month").type == "yearmonth"
    months = {row["month"] for row in rows_of(ExportOptions(date_precision="month"))}
    assert months == {today().strftime("%Y-%m")}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (ExportOptions(versions=(7,)), "versions"),
        (ExportOptions(date_precision="hour"), "date_precision"),
        (ExportOptions(free_text="all"), "free_text"),
        (ExportOptions(pivot="magic"), "pivot"),
        (ExportOptions(batch_size=0), "batch_size"),
        (ExportOptions(order="arrival"), "order"),
    ],
)
def test_invalid_options_are_refused(exported: list[Row], options: ExportOptions, field: str):
    with pytest.raises(ExportOptionsInvalidError) as caught:
        build_dataset(CODE, options)
    assert field in (caught.value.errors or {})


def test_unknown_questionnaire_and_empty_questionnaire(app: Flask):
    with pytest.raises(QuestionnaireNotFoundError):
        build_dataset("no_such_questionnaire")
    create_questionnaire(export_definition("draft_only"))
    with pytest.raises(ExportOptionsInvalidError) as caught:
        build_dataset("draft_only")
    assert "versions" in (caught.value.errors or {})
    make_questionnaire(export_definition())
    dataset = build_dataset(CODE)
    assert dataset.count() == 0 and list(dataset.rows()) == [] and dataset.names == NAMES


# -- several versions ------------------------------------------------------------------------------


def second_version(definition: dict[str, Any]) -> dict[str, Any]:
    """Version 2: household removed, trust added, support relabelled, option which=d and a fourth rank
    added, and balance turned from a number into a rating."""
    definition = copy.deepcopy(definition)
    main = definition["sections"][0]["questions"]
    main[:] = [q for q in main if q["code"] != "household"]
    by_code = {q["code"]: q for q in main}
    support = by_code["support"]
    support["text"] = t("Do you support the dialogue?")
    support["scale"]["points"][2]["label"] = t("fully agree")
    main.insert(main.index(support) + 1, {"code": "trust", "type": "single_choice", "text": t("Trust?"),
                                          "options": [opt("t1"), opt("t2")]})  # fmt: skip
    by_code["which"]["options"].insert(3, opt("d"))
    by_code["priorities"]["max_ranked"] = 4
    main[main.index(by_code["balance"])] = {
        "code": "balance", "type": "rating", "text": t("Balance now"), "range": {"min": -5, "max": 5},
    }  # fmt: skip
    return definition


def test_versions_export_together_with_empty_cells_where_not_asked(app: Flask):
    questionnaire = make_questionnaire(export_definition())
    publish_version(add_version(questionnaire, validate_definition(second_version(export_definition()))))
    expected = []
    for i in range(3):
        answers = sample_answers(i)
        submit(CODE, answers, version=1)
        expected.append(
            expected_row(answers)
            | {"trust": None, "which__d": None, "priorities__rank4": None}
            | {"balance": None, "balance__number": answers["balance"]}
        )
    for i in range(3, 6):
        answers = {k: v for k, v in sample_answers(i).items() if k != "household"}
        answers |= {"trust": "t2", "balance": -3, "priorities": ["p4", "p3", "p2", "p1"]}
        if "which" in answers:
            answers["which"] = ["d"]
        submit(CODE, answers, version=2)
        expected.append(
            expected_row(answers, version=2)
            | {"trust": "t2", "which__d": 1 if "which" in answers else None, "priorities__rank4": "p1"}
            | {"balance": -3, "balance__number": None}
        )

    dataset = build_dataset(CODE)
    names = dataset.names
    assert names[names.index("which__c") + 1 : names.index("which__none") + 1] == ("which__d", "which__none")
    assert names[names.index("support") + 1] == "trust"
    assert names[names.index("priorities__rank3") + 1 : names.index("comment")] == ("priorities__rank4", "household")
    assert "balance" in names and "balance__number" in names
    assert dataset.column("household").versions == (1,)
    assert dataset.column("trust").versions == (2,)
    assert dataset.column("which__d").versions == (2,)
    assert dataset.column("support").versions == (1, 2)
    assert dataset.column("balance").kind == "rating" and dataset.column("balance__number").kind == "number"

    rows = [dict(zip(names, row, strict=True)) for row in dataset.rows()]
    assert multiset(rows) == multiset(expected)
    assert list(dataset.rows()) == list(build_dataset(CODE, ExportOptions(pivot="python")).rows())

    support = dataset.column("support")
    assert support.label("en") == "Do you support the dialogue? [en]"
    assert [(versions, labels["en"]) for versions, labels in support.label_history] == [
        ((1,), "Support? [en]"),
        ((2,), "Do you support the dialogue? [en]"),
    ]
    agree = support.category("agree")
    assert agree is not None and agree.label("en") == "fully agree [en]" and len(agree.label_history) == 2
    book = [row for row in codebook_rows(dataset) if row[0] == "support" and row[5] is None]
    assert [(row[4], row[8]) for row in book] == [("1", "Support? [en]"), ("2", "Do you support the dialogue? [en]")]

    # The same option code has a database id per version: profiles merge them into one value.
    for pivot in ("sql", "python"):
        profile = build_dataset(CODE, ExportOptions(pivot=pivot)).profile_by(["community"], ["support", "trust"])
        counts, values, answered = profile_from_rows(expected, ["community"], ["support", "trust"])
        assert (profile.counts, profile.values, profile.answered) == (counts, values, answered)

    only_first = build_dataset(CODE, ExportOptions(versions=(1,)))
    assert "trust" not in only_first.names and only_first.count() == 3
    assert {row[0] for row in only_first.rows()} == {1}
