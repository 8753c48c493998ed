"""Reporting what is wrong with a configuration: every problem, each at its dotted path, in one
:class:`SettingsError`, with secrets masked."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from entrypoints.settings.schema import CROSS_CHECKS, SKIP_CROSS_CHECKS, Settings

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


_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY", re.I)


def secret_values(
    env: Mapping[str, str],
    used: list[tuple[str, tuple[str | int, ...]]],
    env_origin: Mapping[tuple[str, ...], str],
) -> set[str]:
    """The values that came from a secret: a variable substituted into a secret setting anywhere,
    one whose name says it is secret, or a QS_ override of a secret setting."""
    names = {name for name, loc in used if _is_secret(loc) or _SECRET_NAME.search(name)}
    names |= {name for loc, name in env_origin.items() if loc and _is_secret(loc)}
    return {env[name] for name in names if env.get(name)}


def mask(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value in it shown as :data:`REDACTED` (longest first, so a secret
    inside another is not left half shown)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def under(loc: tuple[str | int, ...], paths: set[tuple[str, ...]]) -> bool:
    parts = tuple(str(part).lower() for part in loc)
    return any(parts[: len(path)] == path for path in paths)


def describe(error: Mapping[str, Any], env_origin: Mapping[tuple[str, ...], str]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    key_problem = bool(loc) and loc[-1] == "[key]"
    if key_problem:
        loc = loc[:-1]
    path = dotted(loc)
    if kind == "extra_forbidden":
        message = f"unknown key{suggestion(loc[-1], keys_at(loc[:-1]))}"
    elif kind == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = str(error["msg"])
        value = error.get("input")
        if not _is_secret(loc) and _is_scalar(value):
            message += f", got {_show(value)}"
    if key_problem:
        message = f"key {_show(loc[-1])}: {message}"
        path = dotted(loc[:-1])
    return f"{path}: {message}{_from_env(loc, env_origin)}"


def _from_env(loc: tuple[str | int, ...], env_origin: Mapping[tuple[str, ...], str]) -> str:
    parts = tuple(str(p).lower() for p in loc)
    for env_path, name in env_origin.items():
        if parts[: len(env_path)] == env_path:
            return f" (from environment variable {name})"
    return ""


def model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def keys_at(loc: tuple[str | int, ...]) -> list[str]:
    model = model_at(loc)
    return list(model.model_fields) if model is not None else []


def _is_secret(loc: tuple[str | int, ...]) -> bool:
    model = model_at(loc[:-1]) if loc else None
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    return field is not None and "SecretStr" in str(field.annotation)


def suggestion(key: object, candidates: list[str]) -> str:
    close = difflib.get_close_matches(str(key), candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dotted(loc: tuple[str | int, ...]) -> str:
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


def type_name(value: object) -> str:
    names = {list: "a list", str: "a string", int: "a number", Decimal: "a number", bool: "a bool"}
    return names.get(type(value), type(value).__name__)


def cross_field_problems(
    merged: Mapping[str, Any],
    env_origin: Mapping[tuple[str, ...], str],
    reported: set[tuple[str, ...]],
) -> list[str]:
    """Each cross-field check whose inputs are valid on their own, on the raw merged data."""
    problems: list[str] = []
    for cross in CROSS_CHECKS:
        raw = merged.get(cross.section, {})
        if not isinstance(raw, Mapping) or any(
            under((cross.section, key), reported) for key in cross.inputs
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
            problems.append(f"{dotted(loc)}: {problem[1]}{_from_env(loc, env_origin)}")
    return problems
