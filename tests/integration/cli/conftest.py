"""Fixtures: an empty and a migrated journal store, each on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cli.journal_store import SAMPLE_CONFIG, Store, make_store


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store never migrated (SQLite: not even the file), configured with default settings."""
    yield from make_store(request.param, request, tmp_path, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store, configured with config/sample.yaml's settings."""
    for made in make_store(request.param, request, tmp_path, SAMPLE_CONFIG):
        made.upgrade()
        yield made
