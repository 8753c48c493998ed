"""Fixtures shared by the whole suite: a real PostgreSQL (tests/support/postgres.py)."""

pytest_plugins = ["tests.support.postgres"]
