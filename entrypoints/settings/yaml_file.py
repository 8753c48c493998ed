"""The config file, read: YAML parsed exactly (decimals as written, no aliases, no key twice),
then ``${VAR}`` and ``${VAR:-default}`` substituted from the given environment (``$$`` is a ``$``)
in the parsed tree, so a value can never inject YAML. The pre-step before the settings sources."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from entrypoints.settings.problems import dotted, suggestion, type_name
from entrypoints.settings.schema import Settings


def read_config(
    path: Path,
    env: Mapping[str, str],
    problems: list[str],
    reported: set[tuple[str, ...]],
    used: list[tuple[str, tuple[str | int, ...]]],
) -> dict[str, Any] | None:
    """The file's sections, substituted; ``None`` when the file cannot be read or parsed at all.
    Each problem is added to ``problems``; each path whose value is a stand-in (a variable not
    set) to ``reported``; each variable substituted, with the path it went to, to ``used``."""
    loaded = _read_yaml(path, problems)
    if loaded is None and problems:
        return None
    tree: dict[str, Any] = _substitute_tree(
        _sections(loaded, problems), (), env, problems, reported, used
    )
    return tree


class _AliasRefused(yaml.MarkedYAMLError):  # type: ignore[misc]
    """A YAML alias in the config: refused, since one can refer to itself (endless recursion) or
    fan out exponentially ("billion laughs"), and a config needs neither."""


class ConfigLoader(yaml.SafeLoader):  # type: ignore[misc]
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


ConfigLoader.add_constructor("tag:yaml.org,2002:float", ConfigLoader.construct_exact_decimal)


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append("config file not found")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"cannot read config file: {exc}")
        return None
    loader = ConfigLoader(text)
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
                    f"{dotted((*loc, key_node.value))}: duplicate key on line "
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
            f"got {type_name(data)}"
        )
        return {}
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key in Settings.model_fields:
            # A section with every key commented out parses as null: it means "all defaults".
            sections[key] = {} if value is None else value
        else:
            problems.append(f"{key}: unknown section{suggestion(key, list(Settings.model_fields))}")
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
    path = dotted(loc)

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
