"""The journal's tables (SQLAlchemy Core), one schema for PostgreSQL and SQLite.

Every journal table has a unique natural key, so writes are ``INSERT ... ON CONFLICT DO NOTHING`` and
journaling the same events twice changes nothing; ``id`` keeps the order rows were first written.
Money is exact: ``NUMERIC`` on PostgreSQL, the decimal's string on SQLite (whose NUMERIC is a float).
Times are timezone-aware UTC: ``timestamptz`` on PostgreSQL, UTC text on SQLite (which has no time
type; the fixed-width text sorts and compares like the instant).

``migrations/versions`` creates exactly these tables (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SCHEMA_REVISION = "0002"
"""The alembic revision these tables correspond to (the head of ``migrations/versions``)."""


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out; a naive one is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValueError(f"journal times must be timezone-aware datetimes, got {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """An exact, finite Decimal: NUMERIC on PostgreSQL, its string on SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"journal money must be a finite Decimal, got {value!r}")
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def _id() -> Column[int]:
    # SQLite numbers rows itself only for an INTEGER PRIMARY KEY (a BIGINT one would stay NULL).
    return Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)


metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

bars = Table(
    "bars",
    metadata,
    _id(),
    Column("contract", Text, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("open", Double, nullable=False),
    Column("high", Double, nullable=False),
    Column("low", Double, nullable=False),
    Column("close", Double, nullable=False),
    Column("volume", BigInteger, nullable=False),
    UniqueConstraint("contract", "ts", "seconds"),
)

signals = Table(
    "signals",
    metadata,
    _id(),
    Column("ts", UtcDateTime, nullable=False),
    Column("bar_start", UtcDateTime, nullable=False),
    Column("close", Double, nullable=False),
    Column("z", Double, nullable=True),
    Column("action", String(16), nullable=False),
    Column("side", String(8), nullable=True),
    Column("detail", Text, nullable=False),
    UniqueConstraint("ts", "bar_start", "action"),
)

order_intents = Table(
    "order_intents",
    metadata,
    _id(),
    Column("key", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", String(8), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("price", Money, nullable=True),
    Column("ts", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False),
    UniqueConstraint("key"),
)

order_events = Table(
    "order_events",
    metadata,
    _id(),
    Column("order_key", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False),
    UniqueConstraint("order_key", "status", "ts", "detail"),
)

fills = Table(
    "fills",
    metadata,
    _id(),
    Column("exec_id", Text, nullable=False),
    Column("order_key", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", String(8), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("price", Money, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("commission", Money, nullable=False),
    UniqueConstraint("exec_id"),
)

round_trips = Table(
    "round_trips",
    metadata,
    _id(),
    Column("seq", Integer, nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("entry_ts", UtcDateTime, nullable=False),
    Column("entry_price", Money, nullable=False),
    Column("exit_ts", UtcDateTime, nullable=False),
    Column("exit_price", Money, nullable=False),
    Column("exit_reason", String(32), nullable=False),
    Column("pnl_ticks", BigInteger, nullable=False),
    Column("gross_pnl", Money, nullable=False),
    Column("commissions", Money, nullable=False),
    Column("net_pnl", Money, nullable=False),
    Column("trade_date", Date, nullable=False, index=True),
    UniqueConstraint("side", "entry_ts", "exit_ts"),
)

breaker_events = Table(
    "breaker_events",
    metadata,
    _id(),
    Column("kind", String(8), nullable=False),
    Column("cause", Text, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False),
    Column("until", UtcDateTime, nullable=True),
    UniqueConstraint("kind", "cause", "ts"),
)

operator_commands = Table(
    "operator_commands",
    metadata,
    _id(),
    Column("command", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("occurrence", Integer, nullable=False, server_default="0"),
    UniqueConstraint("ts", "by", "command", "occurrence"),
)
"""Every command is a row: identical ones (same time, user, command) differ by ``occurrence``."""

engine_snapshots = Table(
    "engine_snapshots",
    metadata,
    _id(),
    Column("saved_at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("last_bar_end", BigInteger, nullable=True),
    Column("body", Text, nullable=False),
    Column("resume", Text, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("contract", Text, nullable=True),
    Column("clean_exit", Boolean, nullable=True),
    Column("outcome", Text, nullable=True),
)
"""One row per run of the daemon: when it started and stopped, and how."""

JOURNAL_TABLES: tuple[Table, ...] = (
    bars,
    signals,
    order_intents,
    order_events,
    fills,
    round_trips,
    breaker_events,
    operator_commands,
)

NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    table.name: next(
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    )
    for table in JOURNAL_TABLES
}
"""Each journal table's unique natural key (the conflict target of its inserts)."""
