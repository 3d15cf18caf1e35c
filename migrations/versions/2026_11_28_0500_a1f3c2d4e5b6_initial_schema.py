"""Initial schema: questionnaires, versions, normalised questions, responses and answers.

Revision ID: a1f3c2d4e5b6
Revises:
Create Date: 2026-11-28 05:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "a1f3c2d4e5b6"
down_revision = None
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "questionnaires",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("default_language", sa.String(length=35), nullable=False),
        sa.Column("results_public", sa.Boolean(), nullable=False),
        sa.Column("opens_on", sa.Date(), nullable=True),
        sa.Column("closes_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'open', 'closed', 'archived')", name=op.f("ck_questionnaires_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaires")),
        sa.UniqueConstraint("code", name=op.f("uq_questionnaires_code")),
    )
    op.create_table(
        "questionnaire_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("questionnaire_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["questionnaire_id"],
            ["questionnaires.id"],
            name=op.f("fk_questionnaire_versions_questionnaire_id_questionnaires"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questionnaire_versions")),
        sa.UniqueConstraint(
            "questionnaire_id", "number", name=op.f("uq_questionnaire_versions_questionnaire_id_number")
        ),
    )
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("section", sa.String(length=63), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("demographic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["questionnaire_versions.id"],
            name=op.f("fk_questions_version_id_questionnaire_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questions")),
        sa.UniqueConstraint("version_id", "code", name=op.f("uq_questions_version_id_code")),
    )
    op.create_table(
        "options",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("non_substantive", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"], ["questions.id"], name=op.f("fk_options_question_id_questions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_options")),
        sa.UniqueConstraint("question_id", "code", name=op.f("uq_options_question_id_code")),
    )
    op.create_table(
        "question_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["questions.id"],
            name=op.f("fk_question_items_question_id_questions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_question_items")),
        sa.UniqueConstraint("question_id", "code", name=op.f("uq_question_items_question_id_code")),
    )
    # No column here may ever hold an IP address, a user agent, a session or a time of day.
    op.create_table(
        "responses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("questionnaire_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("submission_key", sa.String(length=64), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("channel IN ('web', 'api', 'import')", name=op.f("ck_responses_channel")),
        sa.ForeignKeyConstraint(
            ["questionnaire_id"],
            ["questionnaires.id"],
            name=op.f("fk_responses_questionnaire_id_questionnaires"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["questionnaire_versions.id"],
            name=op.f("fk_responses_version_id_questionnaire_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.UniqueConstraint(
            "questionnaire_id", "submission_key", name=op.f("uq_responses_questionnaire_id_submission_key")
        ),
    )
    op.create_index("ix_responses_questionnaire_day", "responses", ["questionnaire_id", "submitted_on"])
    op.create_index(op.f("ix_responses_version_id"), "responses", ["version_id"])
    op.create_table(
        "answers",
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("option_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("rank", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["question_items.id"], name=op.f("fk_answers_item_id_question_items")
        ),
        sa.ForeignKeyConstraint(["option_id"], ["options.id"], name=op.f("fk_answers_option_id_options")),
        sa.ForeignKeyConstraint(
            ["question_id"], ["questions.id"], name=op.f("fk_answers_question_id_questions")
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_answers_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("response_id", "question_id", "seq", name=op.f("pk_answers")),
    )
    op.create_index("ix_answers_question_option", "answers", ["question_id", "option_id"])


def downgrade():
    op.drop_index("ix_answers_question_option", table_name="answers")
    op.drop_table("answers")
    op.drop_index(op.f("ix_responses_version_id"), table_name="responses")
    op.drop_index("ix_responses_questionnaire_day", table_name="responses")
    op.drop_table("responses")
    op.drop_table("question_items")
    op.drop_table("options")
    op.drop_table("questions")
    op.drop_table("questionnaire_versions")
    op.drop_table("questionnaires")
