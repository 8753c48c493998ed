"""A sweep's pure parts: trial keys, the results table, objectives, parameter importance, heatmap.

A trial is the base configuration with some settings overridden. Its key is the SHA-256 of its
whole effective configuration in canonical JSON together with the hash of the bar data, so a key
names one result for good: a results file keyed this way is resumed by skipping the keys it holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from application.research.grid import ParamValue
from application.research.objectives import Objective

Metrics: TypeAlias = Mapping[str, Any]
"""One trial's summary metrics, flat: ``{"net_pnl_usd": "-43.05", "max_drawdown.pct": 1.2, ...}``
(money as exact decimal text, ratios as floats, counts as ints, None where undefined)."""


def canonical_json(value: object) -> str:
    """``value`` as JSON with sorted keys, no spaces, Decimals as their text: one text per value."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=_json_default,
    )


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


RESULT_FORMAT = 2
"""The revision of what a trial yields: bump it with any change to the engine's rules or the summary
that changes the result of the same config on the same data, so older results are not reused."""


def trial_key(effective_config: Mapping[str, Any], data_hash: str, engine: str) -> str:
    """The key of a trial: SHA-256 of its effective configuration, its data's hash and the
    ``engine`` revision that computes it (a results file of another revision is not reused)."""
    text = canonical_json({"config": effective_config, "data": data_hash, "engine": engine})
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Trial:
    """One point of a sweep: its place in the plan, parameters and key."""

    index: int
    params: Mapping[str, ParamValue]
    key: str


def param_text(value: ParamValue) -> str:
    """A parameter value as the results show it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- ranking and importance


def objective_values(
    trials: Sequence[Trial], trade_pnls: Mapping[str, Sequence[Decimal]], objective: Objective
) -> dict[str, float | None]:
    """The objective of each trial with results, by key (None where it is undefined)."""
    return {t.key: objective(trade_pnls[t.key]) for t in trials if t.key in trade_pnls}


def ranked(
    trials: Sequence[Trial], values: Mapping[str, float | None], objective: Objective
) -> list[Trial]:
    """The trials that have results, best first (undefined last); ties keep plan order."""
    done = [t for t in trials if t.key in values]
    return sorted(done, key=lambda t: (-objective.rank_key(values[t.key]), t.index))


def importance(
    trials: Sequence[Trial], values: Mapping[str, float | None]
) -> list[tuple[str, float]]:
    """Each parameter with the spread (max − min) of the objective's mean over its values, most
    important first (ties by name). A parameter with a single value, or with values never defined,
    has spread 0."""
    keys = list(trials[0].params) if trials else []
    spreads: list[tuple[str, float]] = []
    for key in keys:
        means = list(_means_by(trials, values, (key,)).values())
        spreads.append((key, max(means) - min(means) if len(means) > 1 else 0.0))
    return sorted(spreads, key=lambda item: (-item[1], item[0]))


def heatmap(
    trials: Sequence[Trial],
    values: Mapping[str, float | None],
    x_key: str,
    y_key: str,
) -> tuple[list[ParamValue], list[ParamValue], list[list[float | None]]]:
    """The objective's mean over the other parameters for each (x, y) value pair: the x values,
    the y values (each in plan order) and ``cells[y][x]`` (None where no trial has a value)."""
    xs: list[ParamValue] = []
    ys: list[ParamValue] = []
    for t in trials:
        if not any(_same(t.params[x_key], v) for v in xs):
            xs.append(t.params[x_key])
        if not any(_same(t.params[y_key], v) for v in ys):
            ys.append(t.params[y_key])
    means = _means_by(trials, values, (x_key, y_key))
    cells = [[means.get((param_text(x), param_text(y))) for x in xs] for y in ys]
    return xs, ys, cells


def _means_by(
    trials: Sequence[Trial], values: Mapping[str, float | None], keys: tuple[str, ...]
) -> dict[tuple[str, ...], float]:
    groups: dict[tuple[str, ...], list[float]] = {}
    for t in trials:
        value = values.get(t.key)
        if value is None:
            continue
        groups.setdefault(tuple(param_text(t.params[k]) for k in keys), []).append(value)
    return {group: math.fsum(vs) / len(vs) for group, vs in groups.items()}


def _same(a: ParamValue, b: ParamValue) -> bool:
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- the table


def table_columns(param_keys: Sequence[str], metrics: Sequence[Metrics]) -> list[str]:
    """The results table's columns: trial, key, the parameters in grid order, then every metric
    name (sorted)."""
    names: set[str] = set()
    for m in metrics:
        names.update(m)
    return ["trial", "key", *param_keys, *sorted(names - set(param_keys))]


def table_rows(
    trials: Sequence[Trial], metrics: Mapping[str, Metrics], columns: Sequence[str]
) -> list[list[Any]]:
    """One row per trial with results, in plan order: the values of ``columns``."""
    rows: list[list[Any]] = []
    for t in sorted(trials, key=lambda t: t.index):
        if t.key not in metrics:
            continue
        m = metrics[t.key]
        row: list[Any] = [t.index, t.key]
        row.extend(t.params[k] if k in t.params else m.get(k) for k in columns[2:])
        rows.append(row)
    return rows


def flatten(
    document: Mapping[str, Any], skip: Callable[[str], bool] = lambda _: False
) -> dict[str, Any]:
    """Nested mappings as one level with dotted names (lists are kept whole)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif not skip(prefix):
            flat[prefix] = value

    for key, value in document.items():
        if not skip(key):
            walk(key, value)
    return flat
