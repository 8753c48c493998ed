"""Loading the configuration: a YAML file with ``${ENV}`` substitution, overridden by ``QS_*`` variables.

Precedence, highest first: environment variables ``QS_<SECTION>__<KEY>`` (case-insensitive; dict
and list values as JSON; ``null`` switches a nullable limit off), then the YAML file, then the
defaults (:mod:`entrypoints.settings.schema`). The file is read and substituted here, as a
pre-step; pydantic-settings' own sources then bring the file and the environment in, in the order
``Settings.settings_customise_sources`` gives, and merge them. Every problem in a configuration is
reported at once, each with its dotted path, in one :class:`SettingsError`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings import SettingsError as EnvSourceError
from pydantic_settings.sources.utils import parse_env_vars

from entrypoints.settings.schema import (
    CROSS_CHECKS,
    CROSS_FIELD,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    SKIP_CROSS_CHECKS,
    ReadSources,
    Settings,
    settings_from,
)

REDACTED: Final = "**********"


class SettingsError(Exception):
    """Every problem found in a configuration, each ``"<dotted.path>: <what is wrong>"``."""

    def __init__(self, errors: list[str], source: str = "<no config file>") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(self.errors)

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.source}: {count} configuration problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  - {error}" for error in self.errors)])


# ------------------------------------------------------------------ loading


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
        loaded = _read_yaml(path, problems)
        if loaded is None and problems:
            raise SettingsError(problems, source)
        tree = _sections(loaded, problems)
        tree = _substitute_tree(tree, (), env, problems, reported, used)

    ours = {
        name: value for name, value in env.items() if name.lower().startswith(ENV_PREFIX.lower())
    }
    env_origin = _env_origin(ours, problems)
    secrets = _secret_values(env, used, env_origin)
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
            _describe(error, env_origin)
            for error in exc.errors(include_url=False)
            if error["type"] != CROSS_FIELD and not _under(error["loc"], reported)
        )
    else:
        if not problems:
            settings._load_warnings = tuple(_unmatched_env(env, {name for name, _ in used}))
            return settings
    # The cross-field checks again, over the raw data: pydantic skips a section's model validator
    # when any field of the section fails, and we want those problems in this same report.
    problems.extend(_cross_field_problems(merged.data, env_origin, reported))
    raise SettingsError([_mask(problem, secrets) for problem in problems], source)


_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY", re.I)


def _secret_values(
    env: Mapping[str, str],
    used: list[tuple[str, tuple[str | int, ...]]],
    env_origin: Mapping[tuple[str, ...], str],
) -> set[str]:
    """The values that came from a secret: a variable substituted into a secret setting anywhere,
    one whose name says it is secret, or a QS_ override of a secret setting."""
    names = {name for name, loc in used if _is_secret(loc) or _SECRET_NAME.search(name)}
    names |= {name for loc, name in env_origin.items() if loc and _is_secret(loc)}
    return {env[name] for name in names if env.get(name)}


def _mask(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value in it shown as :data:`REDACTED` (longest first, so a secret
    inside another is not left half shown)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


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
            if key in _keys_at((section,)):
                suggestion = f"{ENV_PREFIX}{section}{ENV_NESTED_DELIMITER}{key}".upper()
                return f" (did you mean {suggestion}? a section and its key are joined by '__')"
    return f" (settings are {ENV_PREFIX}<SECTION>{ENV_NESTED_DELIMITER}<KEY>)"


def _under(loc: tuple[str | int, ...], paths: set[tuple[str, ...]]) -> bool:
    parts = tuple(str(part).lower() for part in loc)
    return any(parts[: len(path)] == path for path in paths)


class _AliasRefused(yaml.MarkedYAMLError):  # type: ignore[misc]
    """A YAML alias in the config: refused, since one can refer to itself (endless recursion) or
    fan out exponentially ("billion laughs"), and a config needs neither."""


class _ConfigLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that keeps floats as the exact decimals written (2.1 is Decimal("2.1")) and
    refuses aliases (``*name``) before they are expanded."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(
                problem=f"YAML aliases (*{event.anchor}) are not allowed in the configuration: "
                "write the value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_exact_decimal(self, node: yaml.ScalarNode) -> Decimal:
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:
            # .inf, .nan and YAML 1.1 oddities: let YAML decide, then validation rejects them.
            return Decimal(repr(self.construct_yaml_float(node)))


_ConfigLoader.add_constructor("tag:yaml.org,2002:float", _ConfigLoader.construct_exact_decimal)


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append("config file not found")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"cannot read config file: {exc}")
        return None
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None  # an empty file
        _report_duplicate_keys(node, (), problems, set())
        return loader.construct_document(node)
    except _AliasRefused as exc:
        mark = exc.problem_mark
        problems.append(f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}")
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        context = f" ({exc.context})" if exc.context else ""
        problems.append(f"{where}: YAML syntax error: {exc.problem}{context}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"YAML error: {exc}")
        return None
    finally:
        loader.dispose()


def _report_duplicate_keys(
    node: yaml.Node, loc: tuple[str | int, ...], problems: list[str], seen_nodes: set[int]
) -> None:
    """A key written twice: YAML silently keeps the last value, which hides a mistake."""
    if id(node) in seen_nodes:  # an alias of a node already walked
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[tuple[str, str]] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            if key in keys:
                problems.append(
                    f"{_dotted((*loc, key_node.value))}: duplicate key on line "
                    f"{key_node.start_mark.line + 1} (YAML would silently keep the last value)"
                )
            keys.add(key)
            _report_duplicate_keys(value_node, (*loc, key_node.value), problems, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _report_duplicate_keys(item, (*loc, index), problems, seen_nodes)


def _sections(data: Any, problems: list[str]) -> dict[str, Any]:
    """The top level as ``{section: mapping}``; anything else is reported and dropped."""
    if data is None:
        return {}  # an empty file: the defaults
    if not isinstance(data, dict):
        problems.append(
            f"the top level must be a mapping of sections ({', '.join(Settings.model_fields)}), "
            f"got {_type_name(data)}"
        )
        return {}
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key in Settings.model_fields:
            # A section with every key commented out parses as null: it means "all defaults".
            sections[key] = {} if value is None else value
        else:
            problems.append(
                f"{key}: unknown section{_suggestion(key, list(Settings.model_fields))}"
            )
    return sections


_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _substitute_tree(
    node: Any,
    loc: tuple[str | int, ...],
    env: Mapping[str, str],
    problems: list[str],
    reported: set[tuple[str, ...]],
    used: list[tuple[str, tuple[str | int, ...]]],
) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string value; ``$$`` is a ``$``. Each
    variable substituted is added to ``used`` with the path it went to."""
    if isinstance(node, dict):
        return {
            k: _substitute_tree(v, (*loc, k), env, problems, reported, used)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            _substitute_tree(v, (*loc, i), env, problems, reported, used)
            for i, v in enumerate(node)
        ]
    if not isinstance(node, str) or "$" not in node:
        return node
    path = _dotted(loc)

    def report(message: str) -> None:
        problems.append(f"{path}: {message}")
        reported.add(tuple(str(part).lower() for part in loc))

    def replace(match: re.Match[str]) -> str:
        whole, body = match.group(0), match.group(1)
        if whole == "$$":
            return "$"
        if body is None:
            report("unterminated '${' (write $$ for a literal $)")
            return whole
        name, has_default, default = body.partition(":-")
        if not _VAR_NAME.fullmatch(name):
            report(f"malformed substitution {whole!r}: expected ${{NAME}} or ${{NAME:-default}}")
            return whole
        value = env.get(name)
        used.append((name, loc))
        if has_default:
            return value if value else default  # like the shell: unset or empty takes the default
        if value is None:
            report(
                f"environment variable {name} is not set (used as ${{{name}}}; "
                f"write ${{{name}:-}} to make it optional)"
            )
            return ""
        return value

    return _REFERENCE.sub(replace, node)


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
                    f"{name}: value is not valid JSON for {_dotted(_env_path(name))}"
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
        elif isinstance(value, Mapping) and isinstance(above[key], Mapping) and _model_at(inner):
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
                f"{parts[0]!r}{_suggestion(parts[0], list(Settings.model_fields))}"
            )
    return origin


def _env_path(name: str) -> tuple[str, ...]:
    return tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER))


def _cross_field_problems(
    merged: Mapping[str, Any],
    env_origin: Mapping[tuple[str, ...], str],
    reported: set[tuple[str, ...]],
) -> list[str]:
    """Each cross-field check whose inputs are valid on their own, on the raw merged data."""
    problems: list[str] = []
    for cross in CROSS_CHECKS:
        raw = merged.get(cross.section, {})
        if not isinstance(raw, Mapping) or any(
            _under((cross.section, key), reported) for key in cross.inputs
        ):
            continue
        inputs = {key: raw[key] for key in cross.inputs if key in raw}
        try:
            # Only the check's inputs, the rest defaulted, without the section's model validator:
            # each check runs here on its own, so a section with two problems shows both.
            section = cross.model.model_validate(inputs, context={SKIP_CROSS_CHECKS: True})
        except ValidationError:
            continue  # an input invalid on its own: reported by the first pass
        problem = cross.check(section)
        if problem is not None:
            loc = (cross.section, problem[0])
            problems.append(f"{_dotted(loc)}: {problem[1]}{_from_env(loc, env_origin)}")
    return problems


# ------------------------------------------------------------------ describing problems


def _describe(error: Mapping[str, Any], env_origin: Mapping[tuple[str, ...], str]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    key_problem = bool(loc) and loc[-1] == "[key]"
    if key_problem:
        loc = loc[:-1]
    path = _dotted(loc)
    if kind == "extra_forbidden":
        message = f"unknown key{_suggestion(loc[-1], _keys_at(loc[:-1]))}"
    elif kind == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = str(error["msg"])
        value = error.get("input")
        if not _is_secret(loc) and _is_scalar(value):
            message += f", got {_show(value)}"
    if key_problem:
        message = f"key {_show(loc[-1])}: {message}"
        path = _dotted(loc[:-1])
    return f"{path}: {message}{_from_env(loc, env_origin)}"


def _from_env(loc: tuple[str | int, ...], env_origin: Mapping[tuple[str, ...], str]) -> str:
    parts = tuple(str(p).lower() for p in loc)
    for env_path, name in env_origin.items():
        if parts[: len(env_path)] == env_path:
            return f" (from environment variable {name})"
    return ""


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _keys_at(loc: tuple[str | int, ...]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model is not None else []


def _is_secret(loc: tuple[str | int, ...]) -> bool:
    model = _model_at(loc[:-1]) if loc else None
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    return field is not None and "SecretStr" in str(field.annotation)


def _suggestion(key: object, candidates: list[str]) -> str:
    close = difflib.get_close_matches(str(key), candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<top level>"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | Decimal | bool)


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _type_name(value: object) -> str:
    names = {list: "a list", str: "a string", int: "a number", Decimal: "a number", bool: "a bool"}
    return names.get(type(value), type(value).__name__)


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
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
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
            _describe(error, {})
            for error in exc.errors(include_url=False)
            if error["type"] != CROSS_FIELD
        )
    if cross_checks:
        problems.extend(_cross_field_problems(data, {}, set()))
    raise SettingsError(problems, source)
