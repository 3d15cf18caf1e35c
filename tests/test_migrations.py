"""Migrations are the only way tables are made: one head, and they agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from survey import MIGRATIONS
from survey.db import db
from tests.conftest import fresh_database, make_app, migrate_and_seed

PROFILES_REVISION_BEFORE = "d9e1c7a3b5f2"  # the revision before answer profiles


def test_one_head():
    script = ScriptDirectory(str(MIGRATIONS))
    assert len(script.get_heads()) == 1


def test_models_match_migrations_and_downgrade_is_clean(database_kind, tmp_path):
    with fresh_database(database_kind, tmp_path) as url:
        app = make_app(url)
        with app.app_context():
            upgrade()
            with db.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                differences = compare_metadata(context, db.metadata)
            assert differences == []
            tables = set(inspect(db.engine).get_table_names())
            assert {
                "questionnaires",
                "questionnaire_versions",
                "questions",
                "options",
                "responses",
                "answers",
            } <= tables

            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            db.engine.dispose()


def test_response_table_has_no_column_that_could_identify_a_person(app):
    columns = {c["name"]: c for c in inspect(db.engine).get_columns("responses")}
    assert set(columns) == {
        "id",
        "questionnaire_id",
        "version_id",
        "language",
        "channel",
        "submitted_on",
        "submission_key",
        "payload_hash",
    }
    # Day precision: the only time column is a DATE, never a timestamp.
    assert str(columns["submitted_on"]["type"]).upper() == "DATE"


def test_the_profiles_migration_gives_stored_responses_the_profiles_new_ones_get(database_kind, tmp_path):
    """Responses stored before answer profiles existed get, from the migration, exactly the profile
    ids and profiles the submission path gives (the migration repeats its hashing)."""
    from survey.responses.models import Answer, AnswerProfile
    from tests.results.test_profiles import fill

    def stored() -> tuple[list, list]:
        answers = db.session.execute(
            select(Answer.response_id, Answer.question_id, Answer.seq, Answer.profile_id).order_by(
                Answer.response_id, Answer.question_id, Answer.seq
            )
        ).all()
        profiles = db.session.execute(
            select(AnswerProfile.questionnaire_id, AnswerProfile.id, AnswerProfile.breakdowns).order_by(
                AnswerProfile.id
            )
        ).all()
        db.session.remove()
        return answers, profiles

    with fresh_database(database_kind, tmp_path) as url:
        app = make_app(url)
        migrate_and_seed(app)
        with app.app_context():
            fill(40, seed=2)
            answers, profiles = stored()
            assert len({a.profile_id for a in answers}) == len(profiles) > 5
            downgrade(revision=PROFILES_REVISION_BEFORE)
            assert "profile_id" not in {c["name"] for c in inspect(db.engine).get_columns("answers")}
            upgrade()
            assert stored() == (answers, profiles)
            db.engine.dispose()
