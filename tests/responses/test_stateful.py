"""A stateful model of the submission API (promise Q2): Hypothesis drives random sequences of new
submissions, replays (also in an equivalent form), conflicting resubmissions, closing and reopening,
and after every step the database must match a plain Python model of what was acknowledged.

The model is the specification in miniature: a submission_id is stored at most once, with the
first body acknowledged for it; a replay of that body answers 200 with the same receipt; any other
body for it answers 409 and changes nothing; a closed questionnaire stores nothing and says so.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from survey.db import db, unit_of_work
from survey.questionnaires.services import create_questionnaire, get_questionnaire, open_questionnaire
from survey.responses.models import Answer, Response
from tests.factories import all_types_definition, submission, valid_answers

URL = "/api/v1/questionnaires/all_types/responses"

answer_sets = st.builds(
    lambda score, household, comment, language: (
        {**valid_answers(), "score": score, "household": household, "comment": comment},
        language,
    ),
    score=st.sampled_from([0, 2, 4, 6, 8, 10]),  # the scale's points (step 2)
    household=st.integers(1, 12),
    comment=st.sampled_from(["", "Prishtinë ✓", "Мир", "ok"]),
    language=st.sampled_from(["en", "sq", "sr-Latn", "sr-Cyrl"]),
)


class SubmissionMachine(RuleBasedStateMachine):
    """The model: ``acknowledged`` maps each stored submission_id to the body that stored it."""

    sent = Bundle("sent")

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        with unit_of_work():  # each run starts open (an earlier run may have ended closed)
            questionnaire = get_questionnaire("all_types")
            if questionnaire.status == "closed":
                questionnaire.open()
        self.open = True
        self.acknowledged: dict[str, dict[str, Any]] = {}
        self.receipts: dict[str, dict[str, Any]] = {}
        self.baseline = _stored_counts()

    def _post(self, body: dict[str, Any]) -> Any:
        return self.client.post(URL, json=body)

    def _expect_closed(self, response: Any) -> None:
        assert response.status_code == 409, response.json
        assert response.json["code"] == "questionnaire_closed"

    @rule(target=sent, answers=answer_sets)
    def submit_new(self, answers: tuple[dict[str, Any], str]) -> dict[str, Any]:
        body = submission(answers=answers[0], language=answers[1])
        response = self._post(body)
        if not self.open:
            self._expect_closed(response)
        else:
            assert response.status_code == 201, response.json
            self.acknowledged[body["submission_id"]] = body
            self.receipts[body["submission_id"]] = response.json
        return body

    @rule(body=sent, upper=st.booleans())
    def replay(self, body: dict[str, Any], upper: bool) -> None:
        again = copy.deepcopy(body)
        if upper:  # the same id in another case is the same submission
            again["submission_id"] = again["submission_id"].upper()
        response = self._post(again)
        key = body["submission_id"]
        if not self.open:
            self._expect_closed(response)
        elif key in self.acknowledged and _same_payload(body, self.acknowledged[key]):
            assert response.status_code == 200, response.json
            assert response.json == self.receipts[key]
        elif key in self.acknowledged:  # this id was first stored with other answers
            assert response.status_code == 409, response.json
            assert response.json["code"] == "submission_conflict"
        else:  # sent while closed, never stored: now it is new
            assert response.status_code == 201, response.json
            self.acknowledged[key] = body
            self.receipts[key] = response.json

    @rule(body=sent, answers=answer_sets)
    def resubmit_other_answers(self, body: dict[str, Any], answers: tuple[dict[str, Any], str]) -> None:
        other = {**body, "answers": answers[0], "language": answers[1]}
        key = body["submission_id"]
        response = self._post(other)
        if not self.open:
            self._expect_closed(response)
        elif key not in self.acknowledged:
            assert response.status_code == 201, response.json
            self.acknowledged[key] = other
            self.receipts[key] = response.json
        elif _same_payload(other, self.acknowledged[key]):
            assert response.status_code == 200, response.json
        else:
            assert response.status_code == 409, response.json
            assert response.json["code"] == "submission_conflict"

    @rule()
    def close_or_reopen(self) -> None:
        with unit_of_work():
            questionnaire = get_questionnaire("all_types")
            if self.open:
                questionnaire.close()
            else:
                questionnaire.open()
        self.open = not self.open

    @invariant()
    def the_database_holds_exactly_what_was_acknowledged(self) -> None:
        responses, answers = _stored_counts()
        assert responses - self.baseline[0] == len(self.acknowledged)
        keys = db.session.scalar(select(func.count(func.distinct(Response.submission_key))))
        assert keys == responses  # no submission stored twice
        assert answers >= responses  # every stored response has its answers (consent at least)


def _same_payload(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["language"] == b["language"] and a["answers"] == b["answers"]


def _stored_counts() -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Response)) or 0,
        db.session.scalar(select(func.count()).select_from(Answer)) or 0,
    )


def test_submission_api_matches_its_model(app, client):
    open_questionnaire(create_questionnaire(all_types_definition()))
    run_state_machine_as_test(
        lambda: SubmissionMachine(client),
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
