"""Which database errors keep records waiting in the spool (an outage) and which set them aside."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from adapters.sql.journal import is_outage


def _wrapped(orig: Exception, dbapi_base: type[Exception]) -> DBAPIError:
    """The error as SQLAlchemy raises it from the driver's."""
    wrapped = DBAPIError.instance("INSERT INTO fills ...", {}, orig, dbapi_base)
    assert isinstance(wrapped, DBAPIError)
    return wrapped


@pytest.mark.parametrize(
    ("sqlstate", "outage"),
    [
        ("08006", True),  # connection failure
        ("57P01", True),  # admin shutdown (pg_ctl stop)
        ("57P03", True),  # cannot connect now (starting up)
        ("53100", True),  # disk full
        ("40001", True),  # serialization failure
        ("42P01", True),  # undefined table: the schema, not the record
        ("42501", True),  # insufficient privilege
        ("22001", False),  # string data right truncation
        ("22P05", False),  # untranslatable character
        ("23502", False),  # not-null violation
        ("54000", False),  # program limit exceeded (an index row too large)
    ],
)
def test_postgresql_errors_by_sqlstate_class(sqlstate: str, outage: bool) -> None:
    orig = psycopg.errors.lookup(sqlstate)("from the server")
    assert is_outage(_wrapped(orig, psycopg.Error)) is outage


@pytest.mark.parametrize(
    ("orig", "outage"),
    [
        (psycopg.OperationalError("connection failed: Connection refused"), True),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), False),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("disk I/O error"), True),
        (sqlite3.IntegrityError("NOT NULL constraint failed: fills.price"), False),
    ],
)
def test_client_side_errors_by_kind(orig: Exception, outage: bool) -> None:
    base = psycopg.Error if isinstance(orig, psycopg.Error) else sqlite3.Error
    assert is_outage(_wrapped(orig, base)) is outage


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (ValueError("journal times must be timezone-aware"), False),
    ],
)
def test_errors_outside_the_driver(exc: Exception, outage: bool) -> None:
    assert is_outage(exc) is outage
