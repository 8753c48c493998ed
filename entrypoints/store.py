"""Moved to :mod:`entrypoints.container.store` (the composition root builds the store's engine).

These names stay importable from here for the daemon's modules (``entrypoints.runtime``,
``entrypoints.daemon``, ``entrypoints.container.daemon``) and the tests that import them, until those
import from the container package themselves.
"""

from entrypoints.container.store import (
    UPGRADE_COMMAND,
    SchemaOutOfDate,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
    open_engine,
    password_parts,
    require_current_schema,
    schema_revision,
    scrub,
    sqlite_file,
    store_url,
    unavailable_on_database_errors,
    upgrade_hint,
    upgrade_schema,
)

__all__ = [
    "UPGRADE_COMMAND",
    "SchemaOutOfDate",
    "StoreCorrupt",
    "StoreError",
    "StoreMisconfigured",
    "StoreUnavailable",
    "open_engine",
    "password_parts",
    "require_current_schema",
    "schema_revision",
    "scrub",
    "sqlite_file",
    "store_url",
    "unavailable_on_database_errors",
    "upgrade_hint",
    "upgrade_schema",
]
