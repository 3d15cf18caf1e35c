"""Result snapshots: public results are served from stored, disclosure-controlled snapshots.

Revision ID: d9e1c7a3b5f2
Revises: c4a8f6b2d901
Create Date: 2026-11-28 05:45:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "d9e1c7a3b5f2"
down_revision = "c4a8f6b2d901"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "result_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("questionnaire_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["questionnaire_id"],
            ["questionnaires.id"],
            name=op.f("fk_result_snapshots_questionnaire_id_questionnaires"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_snapshots")),
    )
    op.create_index(op.f("ix_result_snapshots_questionnaire_id"), "result_snapshots", ["questionnaire_id"])


def downgrade():
    op.drop_index(op.f("ix_result_snapshots_questionnaire_id"), table_name="result_snapshots")
    op.drop_table("result_snapshots")
