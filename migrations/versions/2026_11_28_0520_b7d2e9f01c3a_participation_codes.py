"""Participation codes: one-time invitation codes kept as keyed hashes, unlinked from responses.

Revision ID: b7d2e9f01c3a
Revises: a1f3c2d4e5b6
Create Date: 2026-11-28 05:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b7d2e9f01c3a"
down_revision = "a1f3c2d4e5b6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("questionnaires") as batch:
        batch.add_column(sa.Column("requires_code", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "participation_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("questionnaire_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("spent_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["questionnaire_id"],
            ["questionnaires.id"],
            name=op.f("fk_participation_codes_questionnaire_id_questionnaires"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participation_codes")),
        sa.UniqueConstraint(
            "questionnaire_id", "code_hash", name=op.f("uq_participation_codes_questionnaire_id_code_hash")
        ),
    )


def downgrade():
    op.drop_table("participation_codes")
    with op.batch_alter_table("questionnaires") as batch:
        batch.drop_column("requires_code")
