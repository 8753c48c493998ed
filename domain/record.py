"""``@record``: immutable value types that are cheap to build.

A ``@dataclass(frozen=True)`` enforces immutability at run time by routing every field of ``__init__``
through ``object.__setattr__``, which makes it about five times as slow to build as a plain slotted
dataclass (measured on CPython 3.11: 626 ns against 120 ns for eight fields). Events, commands and
journal records are built by the dozen for every trade, so here immutability is enforced where it
costs nothing: ``dataclass_transform(frozen_default=True)`` makes mypy (strict on domain/ and
application/) treat every ``@record`` class as frozen and reject any assignment to its fields,
while at run time the class is a plain slotted dataclass. Records still compare by value and hash
by value (``unsafe_hash``), which is sound precisely because nothing assigns to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """A slotted dataclass that type checkers treat as frozen (see the module docstring)."""
    return dataclass(slots=True, unsafe_hash=True)(cls)
