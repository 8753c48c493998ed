"""Every operator command is a row: identical commands are numbered, not dropped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

0001 kept operator commands unique on (ts, by, command), so a flood of identical commands stamped
with the same time became one row. The key now includes ``occurrence``, the command's number among
identical ones, which the journal assigns; rows from before keep occurrence 0. Batch mode so that
SQLite (which cannot drop a constraint in place) rewrites the table; PostgreSQL alters it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operator_commands") as batch:
        batch.add_column(
            sa.Column("occurrence", sa.Integer(), nullable=False, server_default="0")
        )
        batch.drop_constraint("uq_operator_commands_ts_by_command", type_="unique")
        batch.create_unique_constraint(
            "uq_operator_commands_ts_by_command_occurrence", ["ts", "by", "command", "occurrence"]
        )


def downgrade() -> None:
    # Identical commands collapse back to one row (the first), as 0001 kept them.
    op.execute(sa.text("DELETE FROM operator_commands WHERE occurrence > 0"))
    with op.batch_alter_table("operator_commands") as batch:
        batch.drop_constraint("uq_operator_commands_ts_by_command_occurrence", type_="unique")
        batch.create_unique_constraint(
            "uq_operator_commands_ts_by_command", ["ts", "by", "command"]
        )
        batch.drop_column("occurrence")
