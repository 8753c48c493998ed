"""Loading the configuration: a YAML file with ``${ENV}`` substitution, overridden by ``QS_*`` variables.

Precedence, highest first: environment variables ``QS_<SECTION>__<KEY>`` (case-insensitive; dict
and list values as JSON; ``null`` switches a nullable limit off), then the YAML file, then the
defaults (:mod:`entrypoints.settings.schema`). The file is read and substituted first
(:mod:`entrypoints.settings.yaml_file`); pydantic-settings' own sources then bring the file and
the environment in, in the order ``Settings.settings_customise_sources`` gives, and merge them.
Every problem in a configuration is reported at once, each with its dotted path, in one
:class:`SettingsError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings import SettingsError as EnvSourceError
from pydantic_settings.sources.utils import parse_env_vars

from entrypoints.settings.problems import (
    SettingsError,
    cross_field_problems,
    describe,
    dotted,
    keys_at,
    mask,
    model_at,
    secret_values,
    suggestion,
    under,
)
from entrypoints.settings.schema import (
    CROSS_FIELD,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    SKIP_CROSS_CHECKS,
    ReadSources,
    Settings,
    settings_from,
)
from entrypoints.settings.yaml_file import read_config


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (or nothing), substitute ``${VAR}``, apply ``QS_*`` overrides, validate.

    ``environ`` defaults to ``os.environ``; it is the only environment consulted, both for
    ``${VAR}`` substitution and for overrides. Raises :class:`SettingsError` naming every problem.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    source = str(path) if path is not None else "<no config file>"
    problems: list[str] = []
    # Paths already reported (a missing ${VAR}, undecodable JSON): their stand-in value must not
    # produce a second, misleading report.
    reported: set[tuple[str, ...]] = set()

    tree: dict[str, Any] = {}
    # Every ${VAR} substituted, with the path it went to: which values came from secrets.
    used: list[tuple[str, tuple[str | int, ...]]] = []
    if path is not None:
        read = read_config(path, env, problems, reported, used)
        if read is None:
            raise SettingsError(problems, source)
        tree = read

    ours = {
        name: value for name, value in env.items() if name.lower().startswith(ENV_PREFIX.lower())
    }
    env_origin = _env_origin(ours, problems)
    secrets = secret_values(env, used, env_origin)
    merged = _MergedInput(Settings)

    try:
        settings = settings_from(
            ReadSources(
                environment=_EnvironSource(Settings, ours, problems, reported),
                file=_FileSource(Settings, tree),
                merged=merged,
            )
        )
    except ValidationError as exc:
        problems.extend(
            describe(error, env_origin)
            for error in exc.errors(include_url=False)
            if error["type"] != CROSS_FIELD and not under(error["loc"], reported)
        )
    else:
        if not problems:
            settings._load_warnings = tuple(_unmatched_env(env, {name for name, _ in used}))
            return settings
    # The cross-field checks again, over the raw data: pydantic skips a section's model validator
    # when any field of the section fails, and we want those problems in this same report.
    problems.extend(cross_field_problems(merged.data, env_origin, reported))
    raise SettingsError([mask(problem, secrets) for problem in problems], source)


def _unmatched_env(env: Mapping[str, str], substituted: set[str]) -> list[str]:
    """One warning per ``QS_`` variable that sets nothing: not a section (``QS_<SECTION>`` or
    ``QS_<SECTION>__<KEY>``) and not used as a ``${VAR}`` in the config file."""
    prefix = ENV_PREFIX.lower()
    lines = []
    for name in sorted(env):
        if not name.lower().startswith(prefix) or name in substituted:
            continue
        parts = name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER)
        if parts[0] in Settings.model_fields:
            continue  # a section: its keys are checked (an unknown one is an error)
        lines.append(
            f"environment variable {name} matches no setting and is ignored{_env_hint(name)}"
        )
    return lines


def _env_hint(name: str) -> str:
    rest = name[len(ENV_PREFIX) :].lower()
    for section in Settings.model_fields:
        if rest.startswith(section + "_") and not rest.startswith(section + ENV_NESTED_DELIMITER):
            key = rest[len(section) + 1 :]
            if key in keys_at((section,)):
                name = f"{ENV_PREFIX}{section}{ENV_NESTED_DELIMITER}{key}".upper()
                return f" (did you mean {name}? a section and its key are joined by '__')"
    return f" (settings are {ENV_PREFIX}<SECTION>{ENV_NESTED_DELIMITER}<KEY>)"


# ------------------------------------------------------------------ the sources


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source (the ``QS_`` prefix, ``__`` nesting, JSON for dicts
    and lists, ``null``, any case), reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _EnvironSource(_MappingEnvSource):
    """The environment load_settings was given: a value that does not decode (bad JSON for a
    dict or list) is reported and left out, and the others still count."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        environ: Mapping[str, str],
        problems: list[str],
        reported: set[tuple[str, ...]],
    ) -> None:
        self._problems = problems
        self._reported = reported
        super().__init__(settings_cls, environ)

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except EnvSourceError:
            pass
        usable: dict[str, str] = {}
        for name, value in self._environ.items():
            try:
                _MappingEnvSource(self.settings_cls, {name: value})()
            except EnvSourceError:
                self._problems.append(
                    f"{name}: value is not valid JSON for {dotted(_env_path(name))}"
                )
                self._reported.add(_env_path(name))
            else:
                usable[name] = value
        return _MappingEnvSource(self.settings_cls, usable)()


class _FileSource(PydanticBaseSettingsSource):
    """The config file's sections, already read and substituted. A setting a source above sets
    is left to it whole: the environment's telegram.users replaces the file's, not merges in."""

    def __init__(self, settings_cls: type[BaseSettings], tree: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._tree = tree

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._tree.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return _not_set_above(self._tree, self.current_state, ())


def _not_set_above(
    tree: Mapping[str, Any], above: Mapping[str, Any], loc: tuple[str, ...]
) -> dict[str, Any]:
    """``tree`` less every setting ``above`` sets; a section both set is kept key by key."""
    kept: dict[str, Any] = {}
    for key, value in tree.items():
        inner = (*loc, key)
        if key not in above:
            kept[key] = value
        elif isinstance(value, Mapping) and isinstance(above[key], Mapping) and model_at(inner):
            kept[key] = _not_set_above(value, above[key], inner)
    return kept


class _MergedInput(PydanticBaseSettingsSource):
    """Adds nothing: keeps what the sources above it merged (the raw input), for the cross-field
    second pass."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.data: dict[str, Any] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        self.data = self.current_state
        return {}


def _env_origin(ours: Mapping[str, str], problems: list[str]) -> dict[tuple[str, ...], str]:
    """Which ``QS_*`` variable sets each path; one that looks like an override of no section is
    reported."""
    origin: dict[tuple[str, ...], str] = {}
    for name in ours:
        parts = _env_path(name)
        if parts[0] in Settings.model_fields:
            origin[parts] = name
        elif len(parts) > 1:
            # QS_X__Y looks like an override; a bare QS_X may be a ${QS_X} substitution variable.
            problems.append(
                f"{name}: environment variable names no section "
                f"{parts[0]!r}{suggestion(parts[0], list(Settings.model_fields))}"
            )
    return origin


def _env_path(name: str) -> tuple[str, ...]:
    return tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER))


# ------------------------------------------------------------------ overrides (sweeps)


def settings_with(
    base: Settings,
    overrides: Mapping[str, object],
    source: str = "<overrides>",
    *,
    cross_checks: bool = True,
) -> Settings:
    """``base`` with dotted settings replaced (``{"strategy.lookback_period": 40}``), validated by
    the same model and cross-field checks as a config file. Raises :class:`SettingsError` naming
    every problem (an unknown name included). ``cross_checks=False`` checks each value on its own
    (a sweep checks its values one by one, then the combinations)."""
    data: dict[str, Any] = base.model_dump()
    for name, value in overrides.items():
        node = data
        *parents, leaf = name.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[leaf] = value
    problems: list[str] = []
    try:
        if not cross_checks:
            return Settings.model_validate(data, context={SKIP_CROSS_CHECKS: True})
        return Settings(**data)
    except ValidationError as exc:
        problems.extend(
            describe(error, {})
            for error in exc.errors(include_url=False)
            if error["type"] != CROSS_FIELD
        )
    if cross_checks:
        problems.extend(cross_field_problems(data, {}, set()))
    raise SettingsError(problems, source)
