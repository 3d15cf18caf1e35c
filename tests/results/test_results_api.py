"""Results end to end: SQL aggregation, disclosure control, snapshots, staff statistics."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics as pystats
from collections import Counter

import pytest
from sqlalchemy import event, func, select

from survey.db import db, unit_of_work
from survey.questionnaires.services import get_questionnaire
from survey.responses.services import submit_response
from survey.results import services
from survey.results.models import ResultSnapshot
from tests.factories import dialogue_answers, submission
from tests.staff import make_staff

URL = "/api/v1/questionnaires/dialogue_2022/results"
SUPPORT = ["strongly_oppose", "somewhat_oppose", "neither", "somewhat_support", "strongly_support", "dont_know"]
COMMUNITIES = ["albanian", "albanian", "serb", "serb", "bosniak", "turkish"]


def fill(count: int, seed: int = 7) -> list[dict]:
    """Submit ``count`` varied responses to the op-ed questionnaire; return their answers."""
    rng = random.Random(seed)
    given = []
    for _ in range(count):
        answers = dialogue_answers()
        answers["community"] = rng.choice(COMMUNITIES)
        answers["dialogue_support"] = rng.choice(SUPPORT)
        answers["transparency_rating"] = rng.randint(0, 10)
        answers["message_to_leaders"] = f"secret-text-{rng.random()}"
        submit_response("dialogue_2022", submission(answers=answers), channel="api")
        given.append(answers)
    return given


def all_counts(body: dict) -> list:
    return [cell["count"] for q in body["questions"] for g in q["groups"] for cell in g.get("cells", [])]


def test_nothing_is_published_below_the_survey_threshold(client):
    fill(49)
    body = client.get(URL).json
    assert (body["status"], body["snapshot"], body["questions"]) == ("not_yet", None, [])


def test_published_figures_obey_the_rules(client):
    given = fill(60)
    body = client.get(URL + "?breakdown=community").json
    assert body["status"] == "published" and body["snapshot"]["n"] == 60
    for count in all_counts(body):
        assert count is None or count == "<5" or (isinstance(count, int) and count % 5 == 0)
    text = json.dumps(body)
    assert not any(a["message_to_leaders"] in text for a in given)  # free text is never public
    message = next(q for q in body["questions"] if q["code"] == "message_to_leaders")
    assert all(g.get("cells", []) == [] for g in message["groups"])
    for question in body["questions"]:
        for group in question["groups"]:
            assert group["n"] is None or group["n"] >= 10


def test_snapshot_changes_only_by_the_rule_and_is_byte_identical(client, runner):
    fill(60)
    first = client.get(URL).get_data()
    fill(9, seed=8)
    assert client.get(URL).get_data() == first  # under 10 new responses (and 24 h): unchanged
    fill(1, seed=9)
    assert client.get(URL).get_data() == first  # 10 new, but not 24 hours yet
    assert runner.invoke(args=["survey", "snapshot", "dialogue_2022"]).exit_code == 0
    assert json.loads(client.get(URL).get_data())["snapshot"]["n"] == 70


def _age_snapshot(hours: int) -> None:
    """Move the snapshot in force back in time (the rule's clock is the database's taken_at)."""
    with unit_of_work():
        for snapshot in db.session.scalars(select(ResultSnapshot)):
            snapshot.taken_at -= dt.timedelta(hours=hours)


def _statements_of(client, url: str) -> list[str]:
    engine = db.session.get_bind()
    target = engine.engine if hasattr(engine, "engine") else engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()).lower())

    event.listen(target, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(target, "before_cursor_execute", record)
    return seen


def test_after_24_hours_enough_new_responses_make_a_new_snapshot(client, app, monkeypatch):
    fill(60)
    first = client.get(URL).get_data()
    _age_snapshot(25)
    fill(5, seed=8)
    assert client.get(URL).get_data() == first  # 24 hours, but only 5 new: unchanged
    fill(5, seed=9)
    assert client.get(URL).get_data() == first  # 10 new now, but this worker counted a moment ago
    monkeypatch.setitem(app.config, "SNAPSHOT_RECHECK_SECONDS", 0)
    assert json.loads(client.get(URL).get_data())["snapshot"]["n"] == 70


def test_a_survey_too_large_to_tabulate_in_a_request_waits_for_the_command(client, app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "SNAPSHOT_INLINE_MAX_RESPONSES", 50)
    admin_headers = make_staff()["admin"].headers
    fill(60)
    assert client.get(URL).json["status"] == "not_yet"  # due, but not computed while a request waits
    forced = client.post("/api/v1/admin/questionnaires/dialogue_2022/snapshot", headers=admin_headers)
    assert forced.status_code == 409 and forced.json["code"] == "snapshot_too_large"
    result = runner.invoke(args=["survey", "snapshot", "dialogue_2022", "--due"])
    assert result.exit_code == 0, result.output
    assert client.get(URL).json["snapshot"]["n"] == 60
    fill(3, seed=3)
    assert runner.invoke(args=["survey", "snapshot", "dialogue_2022", "--due"]).exit_code == 0
    assert client.get(URL).json["snapshot"]["n"] == 60  # --due keeps the rule: 3 new, not 24 hours


def test_a_snapshot_taken_meanwhile_by_another_worker_is_used_not_doubled(client, monkeypatch):
    """Two workers that find a snapshot due at the same moment must not both take one."""
    fill(60)
    client.get(URL)
    _age_snapshot(25)
    fill(10, seed=8)
    counted = services.count_responses

    def count_while_another_worker_snapshots(questionnaire):  # that worker commits during our count
        with unit_of_work():
            db.session.add(
                ResultSnapshot(
                    questionnaire_id=questionnaire.id,
                    taken_at=dt.datetime.now(dt.UTC),
                    taken_on=dt.datetime.now(dt.UTC).date(),
                    responses=70,
                    version=1,
                    results=services.compute_public(questionnaire),
                )
            )
        return counted(questionnaire)

    monkeypatch.setattr(services, "count_responses", count_while_another_worker_snapshots)
    body = client.get(URL).json
    assert body["snapshot"]["n"] == 70, body
    assert db.session.scalar(select(func.count()).select_from(ResultSnapshot)) == 2


def test_serving_a_snapshot_counts_nothing_and_reads_no_stored_results(client):
    fill(60)
    first = client.get(URL).get_data()
    statements = _statements_of(client, URL)
    assert not [s for s in statements if "count(" in s], statements  # younger than 24 hours: no count
    assert not [s for s in statements if "result_snapshots.results" in s], statements  # body kept
    assert client.get(URL).get_data() == first
    assert client.get(URL + "?breakdown=community").get_data() == client.get(URL + "?breakdown=community").get_data()


def test_a_closed_questionnaire_publishes_its_final_figures(client):
    fill(60)
    client.get(URL)
    fill(3, seed=3)
    with unit_of_work():
        get_questionnaire("dialogue_2022").close()
    assert client.get(URL).json["snapshot"]["n"] == 65  # 63 rounded to 5


def test_breakdowns_are_limited_to_demographic_questions(client):
    response = client.get(URL + "?breakdown=dialogue_support")
    assert response.status_code == 422
    assert "community" in response.json["errors"]["breakdown"][0]
    assert client.get(URL + "?breakdown=DROP%20TABLE").status_code == 422


def test_results_that_are_not_public_are_not_found(client):
    with unit_of_work():
        get_questionnaire("dialogue_2022").results_public = False
    assert client.get(URL).status_code == 404


def test_staff_statistics_match_an_independent_computation(client):
    given = fill(80)
    people = make_staff()
    staff = client.get(
        "/api/v1/admin/questionnaires/dialogue_2022/results?breakdown=community", headers=people["analyst"].headers
    ).json
    assert staff["responses"] == 80
    support = next(q for q in staff["questions"] if q["code"] == "dialogue_support")
    values = {code: i + 1 for i, code in enumerate(SUPPORT[:5])}
    for group in support["groups"]:
        if group["n"] is None or group["group"] not in COMMUNITIES:
            continue
        mine = [
            values[a["dialogue_support"]]
            for a in given
            if a["community"] == group["group"] and a["dialogue_support"] in values
        ]
        assert group["statistics"]["mean"] == pytest.approx(pystats.mean(mine), abs=1e-4)
        assert group["statistics"]["median"] == pystats.median(mine)
        top_two = sum(v >= 4 for v in mine) / len(mine)
        assert group["statistics"]["top_two_share"] == pytest.approx(top_two, abs=1e-4)
        exact = Counter(a["dialogue_support"] for a in given if a["community"] == group["group"])
        assert {c["option"]: c["count"] for c in group["cells"]} == {o: exact.get(o, 0) for o in SUPPORT}
        low, high = group["statistics"]["intervals"]["dont_know"]
        assert low <= exact.get("dont_know", 0) / group["n"] <= high
    rating = next(q for q in staff["questions"] if q["code"] == "transparency_rating")
    for group in rating["groups"]:
        if group["n"] is not None and group["group"] in COMMUNITIES:
            mine = [a["transparency_rating"] for a in given if a["community"] == group["group"]]
            assert group["statistics"]["mean"] == pytest.approx(pystats.mean(mine), abs=1e-4)
    editor = client.get("/api/v1/admin/questionnaires/dialogue_2022/results", headers=people["editor"].headers)
    assert editor.status_code == 403
