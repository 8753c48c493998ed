"""The journal, the engine snapshots and the run log.

Revision ID: 0001
Revises:
Create Date: 2025-11-25

Portable ops only: the same tables on PostgreSQL and SQLite. Money is NUMERIC on PostgreSQL and
the decimal's text on SQLite (whose NUMERIC is a float); times are timestamptz on PostgreSQL and
UTC text on SQLite. Self-contained on purpose: it must keep creating these tables even after
adapters/sql/schema.py moves on (later revisions change them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    # SQLite numbers rows itself only for an INTEGER PRIMARY KEY.
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )


def _money(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.Numeric().with_variant(sa.String(80), "sqlite"), nullable=nullable
    )


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "bars",
        _id(),
        sa.Column("contract", sa.Text(), nullable=False),
        _time("ts"),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bars"),
        sa.UniqueConstraint("contract", "ts", "seconds", name="uq_bars_contract_ts_seconds"),
    )
    op.create_table(
        "signals",
        _id(),
        _time("ts"),
        _time("bar_start"),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("z", sa.Double(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("side", sa.String(8), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
        sa.UniqueConstraint("ts", "bar_start", "action", name="uq_signals_ts_bar_start_action"),
    )
    op.create_table(
        "order_intents",
        _id(),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        _money("price", nullable=True),
        _time("ts"),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_intents"),
        sa.UniqueConstraint("key", name="uq_order_intents_key"),
    )
    op.create_table(
        "order_events",
        _id(),
        sa.Column("order_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _time("ts"),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
        sa.UniqueConstraint(
            "order_key", "status", "ts", "detail", name="uq_order_events_order_key_status_ts_detail"
        ),
    )
    op.create_table(
        "fills",
        _id(),
        sa.Column("exec_id", sa.Text(), nullable=False),
        sa.Column("order_key", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        _money("price"),
        _time("ts"),
        _money("commission"),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        sa.UniqueConstraint("exec_id", name="uq_fills_exec_id"),
    )
    op.create_table(
        "round_trips",
        _id(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        _time("entry_ts"),
        _money("entry_price"),
        _time("exit_ts"),
        _money("exit_price"),
        sa.Column("exit_reason", sa.String(32), nullable=False),
        sa.Column("pnl_ticks", sa.BigInteger(), nullable=False),
        _money("gross_pnl"),
        _money("commissions"),
        _money("net_pnl"),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_round_trips"),
        sa.UniqueConstraint(
            "side", "entry_ts", "exit_ts", name="uq_round_trips_side_entry_ts_exit_ts"
        ),
    )
    op.create_index("ix_round_trips_trade_date", "round_trips", ["trade_date"])
    op.create_table(
        "breaker_events",
        _id(),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        _time("ts"),
        sa.Column("detail", sa.Text(), nullable=False),
        _time("until", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_breaker_events"),
        sa.UniqueConstraint("kind", "cause", "ts", name="uq_breaker_events_kind_cause_ts"),
    )
    op.create_table(
        "operator_commands",
        _id(),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        _time("ts"),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_commands"),
        sa.UniqueConstraint("ts", "by", "command", name="uq_operator_commands_ts_by_command"),
    )
    op.create_table(
        "engine_snapshots",
        _id(),
        _time("saved_at"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_bar_end", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("resume", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_engine_snapshots"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        _time("started_at"),
        _time("ended_at", nullable=True),
        sa.Column("contract", sa.Text(), nullable=True),
        sa.Column("clean_exit", sa.Boolean(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_table("engine_snapshots")
    op.drop_table("operator_commands")
    op.drop_table("breaker_events")
    op.drop_index("ix_round_trips_trade_date", table_name="round_trips")
    op.drop_table("round_trips")
    op.drop_table("fills")
    op.drop_table("order_events")
    op.drop_table("order_intents")
    op.drop_table("signals")
    op.drop_table("bars")
