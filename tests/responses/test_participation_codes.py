"""One-time participation codes: made in batches, stored hashed, spent exactly once, never linked."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import inspect, select

from survey.db import db
from survey.questionnaires.models import ParticipationCode
from survey.questionnaires.services import create_questionnaire, open_questionnaire
from tests.factories import all_types_definition, submission
from tests.responses.test_form_pages import fill_all_types
from tests.webform import FormSession

URL = "/api/v1/questionnaires/all_types/responses"


@pytest.fixture
def codes(app, runner):
    open_questionnaire(create_questionnaire(all_types_definition()))
    result = runner.invoke(args=["survey", "codes", "all_types", "--count", "3"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["participation_code"]
    return [row[0] for row in rows[1:]]


def test_codes_are_stored_only_as_keyed_hashes_with_no_link_to_responses(codes):
    assert len(set(codes)) == 3
    stored = db.session.scalars(select(ParticipationCode.code_hash)).all()
    assert len(stored) == 3 and not set(codes) & set(stored)
    assert {c["name"] for c in inspect(db.engine).get_columns("participation_codes")} == {
        "id",
        "questionnaire_id",
        "code_hash",
        "spent_on",
    }


def test_api_requires_an_unspent_code_and_spends_it_once(client, codes):
    missing = client.post(URL, json=submission())
    assert missing.status_code == 422
    assert missing.json["errors"]["participation_code"] == ["A participation code is required."]

    wrong = client.post(URL, json=submission(participation_code="AAAA-BBBB-CCCC"))
    assert wrong.status_code == 422
    assert wrong.json["errors"] == {"participation_code": ["This code is not valid or has already been used."]}

    first = submission(participation_code=codes[0].lower().replace("-", " "))  # typed loosely
    assert client.post(URL, json=first).status_code == 201
    assert client.post(URL, json=first).status_code == 200  # a replay does not need the code again
    reuse = client.post(URL, json=submission(participation_code=codes[0]))
    assert reuse.status_code == 422
    spent = db.session.scalars(select(ParticipationCode.spent_on).where(ParticipationCode.spent_on.is_not(None)))
    assert len(spent.all()) == 1


def test_web_form_asks_for_the_code_on_the_first_page(client, codes):
    form = FormSession(client, "all_types", "sq")
    assert 'name="participation_code"' in form.page
    assert form.post(q__consent="yes", participation_code="nope").status_code == 422
    assert "Ky kod nuk është i vlefshëm" in form.page
    form.post(q__consent="yes", participation_code=codes[2])
    assert form.hidden["participation_code"] == codes[2]  # travels with the later pages
    form.post(q__heard="no", q__support="agree")
    assert form.post(q__community="x").status_code == 303
    again = FormSession(client, "all_types")
    assert again.post(q__consent="yes", participation_code=codes[2]).status_code == 422


def test_questionnaires_without_codes_do_not_ask(client, app):
    open_questionnaire(create_questionnaire(all_types_definition()))
    form = FormSession(client, "all_types")
    assert 'name="participation_code"' not in form.page
    fill_all_types(form)
    assert form.post(q__community="x").status_code == 303
