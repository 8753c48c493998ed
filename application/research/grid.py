"""A sweep's parameter grid: dotted setting names, each with a list of values or an exact range.

The grid file (YAML, read by the entrypoint) is a mapping such as::

    strategy.lookback_period: [10, 20, 40]
    strategy.z_threshold_entry: {from: 1.5, to: 3.0, step: 0.25}

A range is computed with Decimal, end included when the steps land on it, so ``1.5, 1.75, ...,
3.0`` are exactly those numbers. Values are normalised (``2.0`` and ``2.00`` are one value, written
``2.0``; integers stay integers) so the same grid always gives the same trials. Whether a value
suits its setting is the Settings model's business, checked by the entrypoint; here only the
grid's shape is checked. Every problem is reported at once in one :class:`GridError`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

ParamValue: TypeAlias = int | Decimal | str | bool | None
"""A value a grid gives one setting."""

SWEEPABLE_SECTIONS = ("strategy", "risk", "execution")
"""The settings a sweep may vary: the strategy, its risk limits and the simulated execution."""

MAX_POINTS = 1_000_000
"""A grid larger than this is refused (almost certainly a mistake in a range's step)."""

_RANGE_KEYS = ("from", "to", "step")


class GridError(Exception):
    """Everything wrong with a grid, one problem a line."""

    def __init__(self, errors: Sequence[str], source: str = "grid") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(self.errors)

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.source}: {count} grid problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  - {error}" for error in self.errors)])


@dataclass(frozen=True, slots=True)
class Axis:
    """One setting of the grid and the values it takes, in the grid's order."""

    key: str
    values: tuple[ParamValue, ...]


@dataclass(frozen=True, slots=True)
class Grid:
    """The axes in file order; the points are their product, the first axis varying slowest."""

    axes: tuple[Axis, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(axis.key for axis in self.axes)

    @property
    def size(self) -> int:
        size = 1
        for axis in self.axes:
            size *= len(axis.values)
        return size

    def points(self) -> Iterator[dict[str, ParamValue]]:
        """Every point, in grid order."""
        keys = self.keys
        for combo in itertools.product(*(axis.values for axis in self.axes)):
            yield dict(zip(keys, combo, strict=True))

    def point(self, index: int) -> dict[str, ParamValue]:
        """The ``index``-th point in grid order (mixed radix, last axis fastest)."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        values: list[ParamValue] = []
        for axis in reversed(self.axes):
            index, digit = divmod(index, len(axis.values))
            values.append(axis.values[digit])
        return dict(zip(self.keys, reversed(values), strict=True))

    def sample(self, count: int, seed: int) -> list[dict[str, ParamValue]]:
        """``count`` distinct points drawn with ``seed`` (all of them when the grid is smaller),
        in grid order: the same seed gives the same trials."""
        chosen = sorted(random.Random(seed).sample(range(self.size), min(count, self.size)))
        return [self.point(i) for i in chosen]


def normalize(value: Decimal) -> Decimal:
    """``value`` in one canonical form: trailing zeros dropped, at least one decimal place kept for
    a whole number (``2.00`` → ``2.0``), never an exponent."""
    if value == value.to_integral_value():
        return value.quantize(Decimal("0.0"))
    text = format(value.normalize(), "f")
    return Decimal(text)


def parse_grid(
    data: object,
    source: str = "grid",
    check: Callable[[str, tuple[ParamValue, ...]], list[str]] | None = None,
) -> Grid:
    """The grid described by ``data`` (the parsed grid file; floats must already be Decimals).
    ``check`` says what is wrong with the values of one setting (the settings model's verdict),
    so that a mistake of shape and a value the settings refuse are reported together. Raises
    :class:`GridError` listing every problem."""
    problems: list[str] = []
    if not isinstance(data, Mapping) or not data:
        raise GridError(
            [
                "the grid must be a mapping of setting names to values, e.g. "
                "'strategy.lookback_period: [10, 20, 40]'"
            ],
            source,
        )
    axes: list[Axis] = []
    for key, spec in data.items():
        name = _check_key(key, problems)
        if name is None:
            continue
        values = _values(name, spec, problems)
        if values is not None:
            axes.append(Axis(name, values))
            if check is not None:
                problems.extend(check(name, values))
    grid = Grid(tuple(axes))
    if not problems and grid.size > MAX_POINTS:
        problems.append(f"the grid has {grid.size:,} points, more than {MAX_POINTS:,}")
    if problems:
        raise GridError(problems, source)
    return grid


def _check_key(key: object, problems: list[str]) -> str | None:
    if not isinstance(key, str):
        problems.append(f"{key!r}: a setting name must be text such as strategy.lookback_period")
        return None
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        problems.append(f"{key}: name a setting as section.name, e.g. strategy.lookback_period")
        return None
    if parts[0] not in SWEEPABLE_SECTIONS:
        problems.append(f"{key}: only {', '.join(SWEEPABLE_SECTIONS)} settings can be swept")
        return None
    return key


def _values(key: str, spec: object, problems: list[str]) -> tuple[ParamValue, ...] | None:
    if isinstance(spec, Mapping):
        return _range(key, spec, problems)
    if not isinstance(spec, list):
        problems.append(f"{key}: give a list of values or a range {{from, to, step}}, got {spec!r}")
        return None
    if not spec:
        problems.append(f"{key}: the list of values is empty")
        return None
    values: list[ParamValue] = []
    for raw in spec:
        item: ParamValue = Decimal(repr(raw)) if isinstance(raw, float) else raw
        if isinstance(item, Decimal):
            if not item.is_finite():
                problems.append(f"{key}: {item} is not a finite number")
                continue
            item = normalize(item)
        elif not (item is None or isinstance(item, int | str | bool)):
            problems.append(f"{key}: {item!r} is not a single value")
            continue
        if any(_same(item, seen) for seen in values):
            problems.append(f"{key}: {_show(item)} is listed twice")
            continue
        values.append(item)
    return tuple(values) if len(values) == len(spec) else None


def _range(
    key: str, spec: Mapping[object, object], problems: list[str]
) -> tuple[ParamValue, ...] | None:
    unknown = [str(k) for k in spec if k not in _RANGE_KEYS]
    missing = [k for k in _RANGE_KEYS if k not in spec]
    if unknown or missing:
        what = []
        if missing:
            what.append(f"missing {', '.join(missing)}")
        if unknown:
            what.append(f"unknown {', '.join(unknown)}")
        problems.append(f"{key}: a range needs exactly from, to and step ({'; '.join(what)})")
        return None
    bounds: dict[str, Decimal] = {}
    whole = True
    for name in _RANGE_KEYS:
        raw = spec[name]
        number = _number(raw)
        if number is None:
            problems.append(f"{key}: range {name} must be a number, got {raw!r}")
            continue
        whole = whole and isinstance(raw, int)
        bounds[name] = number
    if len(bounds) != len(_RANGE_KEYS):
        return None
    start, end, step = bounds["from"], bounds["to"], bounds["step"]
    if step <= 0:
        problems.append(f"{key}: range step must be positive, got {step}")
        return None
    if end < start:
        problems.append(f"{key}: range to ({end}) is below from ({start})")
        return None
    count = int((end - start) // step) + 1
    if count > MAX_POINTS:
        problems.append(f"{key}: the range has {count:,} values, more than {MAX_POINTS:,}")
        return None
    if whole:
        return tuple(int(start + i * step) for i in range(count))
    return tuple(normalize(start + i * step) for i in range(count))


def _number(raw: object) -> Decimal | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | Decimal):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    elif isinstance(raw, str):
        try:
            value = Decimal(raw)
        except InvalidOperation:
            return None
    else:
        return None
    return value if value.is_finite() else None


def _same(a: ParamValue, b: ParamValue) -> bool:
    return type(a) is type(b) and a == b


def _show(value: ParamValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
