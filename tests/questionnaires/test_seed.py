"""The seed command: loads, publishes and opens the shipped questionnaire; twice changes nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from survey.db import db
from survey.errors import DefinitionInvalidError
from survey.questionnaires.models import Option, Question, QuestionItem, Questionnaire, QuestionnaireVersion
from survey.questionnaires.services import SHIPPED_DEFINITIONS, seed_shipped_questionnaires
from tests.conftest import fresh_database, make_app


def _counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Questionnaire, QuestionnaireVersion, Question, Option, QuestionItem)
    )


def test_seed_twice_on_a_fresh_database(database_kind, tmp_path):
    with fresh_database(database_kind, tmp_path) as url:
        app = make_app(url)
        runner = app.test_cli_runner()
        assert runner.invoke(args=["db", "upgrade"]).exit_code == 0

        first = runner.invoke(args=["survey", "seed"])
        assert first.exit_code == 0, first.output
        assert "dialogue_2022: created and opened" in first.output
        with app.app_context():
            after_first = _counts()
            questionnaire = db.session.scalar(select(Questionnaire))
            assert (questionnaire.code, questionnaire.status, questionnaire.results_public) == (
                "dialogue_2022",
                "open",
                True,
            )
            assert [v.number for v in questionnaire.versions] == [1]
            assert questionnaire.versions[0].published_on is not None
            db.session.remove()

        second = runner.invoke(args=["survey", "seed"])
        assert second.exit_code == 0
        assert "dialogue_2022: unchanged" in second.output
        with app.app_context():
            assert _counts() == after_first
            # 38 questions, and the matrices' 60 rows (questionnaire-notes §1)
            assert after_first[2] == 38 and after_first[4] == 60
            db.session.remove()
            db.engine.dispose()


def test_changed_shipped_definition_becomes_a_new_version(app, tmp_path):
    definition = json.loads((SHIPPED_DEFINITIONS / "dialogue_2022.json").read_text(encoding="utf-8"))
    definition["title"]["en"] = "A corrected title"
    (tmp_path / "dialogue_2022.json").write_text(json.dumps(definition), encoding="utf-8")

    assert seed_shipped_questionnaires(tmp_path) == [("dialogue_2022", "new version published")]
    questionnaire = db.session.scalar(select(Questionnaire).where(Questionnaire.code == "dialogue_2022"))
    versions = questionnaire.versions
    assert [v.number for v in versions] == [1, 2]
    assert all(v.is_published for v in versions)
    assert versions[1].definition["title"]["en"] == "A corrected title"
    assert versions[0].definition["title"]["en"] != "A corrected title"
    assert seed_shipped_questionnaires(tmp_path) == [("dialogue_2022", "unchanged")]


def test_seed_refuses_an_invalid_shipped_definition(app, tmp_path):
    (tmp_path / "broken.json").write_text('{"code": "Broken"}', encoding="utf-8")
    with pytest.raises(DefinitionInvalidError) as caught:
        seed_shipped_questionnaires(tmp_path)
    assert "code: must be snake_case" in " ".join(caught.value.errors["problems"])
    assert db.session.scalar(select(func.count()).select_from(Questionnaire)) == 1
