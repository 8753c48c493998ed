"""From a grid file and a base configuration to the trials of a sweep, each validated and keyed."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from application.bar_series import BarSeries
from application.research.grid import Grid, GridError, ParamValue, parse_grid
from application.research.sweep import RESULT_FORMAT, Trial, param_text, trial_key
from entrypoints.research.window import Rows
from entrypoints.settings import Settings, SettingsError, _ConfigLoader, settings_with

MAX_SHOWN = 10
"""At most this many invalid combinations are listed (and how many more there are)."""


@dataclass(frozen=True, slots=True)
class PlannedTrial:
    trial: Trial
    settings: Settings
    rows: Rows = None
    """The rows of the executor's bars the trial replays (a walk-forward window; all by default)."""


def read_grid(path: Path, base: Settings | None = None) -> Grid:
    """The grid in the YAML file ``path`` (numbers with a point are exact decimals); with ``base``,
    each value is also checked against the settings (:func:`axis_problems`), and every problem of
    either kind is in one :class:`GridError`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GridError(["grid file not found"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GridError([f"cannot read the grid file: {exc}"], source) from exc
    loader = _ConfigLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise GridError([f"{where}YAML syntax error: {exc.problem}"], source) from exc
    except yaml.YAMLError as exc:
        raise GridError([f"YAML error: {exc}"], source) from exc
    finally:
        loader.dispose()
    check = None if base is None else functools.partial(axis_problems, base)
    return parse_grid(data, source, check)


def axis_problems(base: Settings, key: str, values: Sequence[ParamValue]) -> list[str]:
    """What the settings model says of each of ``values`` of ``key`` applied alone to ``base``
    (nothing if all are fine). A refusal every value gets (an unknown setting) is said once, the
    others with the value they are about. Rules across settings (exit below entry) are left to
    :func:`plan`, which sees the combinations."""
    refusals: list[tuple[ParamValue, list[str]]] = []
    for value in values:
        try:
            settings_with(base, {key: value}, cross_checks=False)
        except SettingsError as exc:
            refusals.append((value, list(exc.errors)))
        else:
            refusals.append((value, []))
    # The settings name the setting in each of their errors ("strategy.x: unknown key").
    common: list[str] = []
    if len(refusals) > 1:
        common = [e for e in refusals[0][1] if all(e in errors for _, errors in refusals)]
    problems = list(common)
    for value, errors in refusals:
        problems.extend(f"{key} = {param_text(value)}: {e}" for e in errors if e not in common)
    return problems


def data_hash(series: BarSeries) -> str:
    """SHA-256 of the bars a replay sees: bar size, the six columns and what was refused."""
    digest = hashlib.sha256()
    digest.update(f"bars:{series.bar_seconds}:{len(series)}\n".encode())
    for column, dtype in (
        (series.epochs, "<i8"),
        (series.opens, "<f8"),
        (series.highs, "<f8"),
        (series.lows, "<f8"),
        (series.closes, "<f8"),
        (series.volumes, "<i8"),
    ):
        digest.update(column.astype(dtype, copy=False).tobytes())
    digest.update(json.dumps(series.refused, sort_keys=True).encode())
    return digest.hexdigest()


@functools.cache
def engine_revision() -> str:
    """The installed package's version and :data:`RESULT_FORMAT`: part of every trial key."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("quant-scalper")
    except PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
        installed = "unknown"
    return f"{installed}+r{RESULT_FORMAT}"


def effective_config(settings: Settings) -> dict[str, Any]:
    """The whole configuration as plain JSON values (secrets masked), the trial key's input."""
    return settings.model_dump(mode="json")


def check_values(base: Settings, grid: Grid, source: str) -> None:
    """Each value of each axis applied alone to ``base``; :class:`GridError` lists every refusal."""
    problems = [
        problem for axis in grid.axes for problem in axis_problems(base, axis.key, axis.values)
    ]
    if problems:
        raise GridError(problems, source)


def plan(
    base: Settings,
    points: Iterable[Mapping[str, ParamValue]],
    data_key: str,
    source: str = "grid",
    rows: Rows = None,
) -> list[PlannedTrial]:
    """The trials of ``points``, in order, each validated and keyed (``data_key``: the hash of
    ``rows`` of the bars, all of them by default). A combination the settings refuse (a
    cross-field rule, e.g. exit threshold not below entry) is an error, listed."""
    planned: list[PlannedTrial] = []
    refused: list[str] = []
    for index, point in enumerate(points):
        try:
            settings = settings_with(base, point)
        except SettingsError as exc:
            refused.append(f"{_point_text(point)}: {'; '.join(exc.errors)}")
            continue
        key = trial_key(effective_config(settings), data_key, engine_revision())
        planned.append(PlannedTrial(Trial(index, dict(point), key), settings, rows))
    if refused:
        shown = refused[:MAX_SHOWN]
        if len(refused) > MAX_SHOWN:
            shown.append(f"... and {len(refused) - MAX_SHOWN} more combinations refused")
        raise GridError(shown, source)
    return planned


def _point_text(point: Mapping[str, ParamValue]) -> str:
    return ", ".join(f"{k}={param_text(v)}" for k, v in point.items())


def unique(trials: Sequence[PlannedTrial]) -> list[PlannedTrial]:
    """The trials with distinct keys (the first of each), in order."""
    seen: set[str] = set()
    kept: list[PlannedTrial] = []
    for p in trials:
        if p.trial.key not in seen:
            seen.add(p.trial.key)
            kept.append(p)
    return kept
