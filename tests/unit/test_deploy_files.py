"""The deployment files in deploy/ keep their safety properties.

No container engine runs in CI, so nothing here builds or starts anything: the files are parsed
(compose with PyYAML, the Dockerfile and the systemd unit with the small readers below) and their
properties checked, so that an edit that publishes the IB API to the network, writes a secret inline,
drops the non-root user or shortens the stop timeout fails the test suite.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from entrypoints.settings import ShutdownSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG_IN_CONTAINER = "/etc/quant-scalper/config.yaml"
# The graceful shutdown takes at most shutdown.timeout_s (the simulated daemon may then wait up to
# 10 s more for its bar checkpoint); whoever stops the daemon must wait at least that long.
MIN_STOP_SECONDS = ShutdownSettings().timeout_s + 10.0
# Environment keys that carry a secret and so must never have an inline value (only *_FILE).
SECRET_KEY = re.compile(r"PASSWORD|PASSPHRASE|TOKEN|SECRET|USERID|API_KEY|DATABASE__URL", re.I)
# A URL with a password in it: scheme://user:password@host.
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")

_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


# ------------------------------------------------------------------ readers


def duration_seconds(text: str) -> float:
    """Seconds in a compose or systemd duration: "45", "45s", "1m30s", "1min 30s"."""
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact.replace(" ", ""):
        raise ValueError(f"not a duration: {text!r}")
    total = 0.0
    for number, unit in parts:
        if unit not in _UNIT_SECONDS and unit != "":
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        total += float(number) * _UNIT_SECONDS.get(unit, 1.0)
    return total


def published_host_ip(mapping: str | dict[str, Any]) -> str:
    """The host address a compose port mapping binds ("" when it binds every interface)."""
    if isinstance(mapping, dict):
        return str(mapping.get("host_ip", ""))
    text = str(mapping)
    if text.startswith("["):  # [::1]:4002:4004
        return text[1 : text.index("]")]
    fields = text.split(":")
    return fields[0] if len(fields) == 3 else ""


def env_file_entries(path: Path) -> dict[str, str]:
    """KEY=value lines of an env file (comments and blank lines skipped); bad lines are errors."""
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise ValueError(f"{path.name}:{number}: not a KEY=value line: {line!r}")
        entries[key] = value
    return entries


def systemd_sections(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> values (keys may repeat in systemd)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1], {})
            continue
        key, sep, value = stripped.partition("=")
        if current is None or not sep:
            raise ValueError(f"{path.name}:{number}: not a key=value line in a section: {line!r}")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def dockerfile_stages(path: Path) -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    """The stages of a Dockerfile: (base image, stage name, [(INSTRUCTION, arguments)])."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    stages: list[tuple[str, str | None, list[tuple[str, str]]]] = []
    for instruction_line in logical:
        instruction, _, arguments = instruction_line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append((words[0], name, []))
        elif not stages:
            if instruction != "ARG":
                raise ValueError(f"{path.name}: {instruction} before the first FROM")
        else:
            stages[-1][2].append((instruction, arguments.strip()))
    return stages


def shell_words(arguments: str) -> str:
    """The command of a RUN/CMD/ENTRYPOINT as one string, from exec (JSON) or shell form."""
    if arguments.startswith("["):
        return " ".join(yaml.safe_load(arguments))
    return " ".join(shlex.split(arguments))


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _env_files(service: dict[str, Any]) -> list[str]:
    files = service.get("env_file") or []
    if isinstance(files, str):
        files = [files]
    return [f if isinstance(f, str) else f["path"] for f in files]


# ------------------------------------------------------------------ the readers themselves


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45", 45.0), ("45s", 45.0), ("1m30s", 90.0), ("1min 30s", 90.0), ("2min", 120.0)],
)
def test_durations_read_in_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "forever", "10 parsecs", "s10"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_seconds(text)


@pytest.mark.parametrize(
    ("mapping", "host_ip"),
    [
        ("127.0.0.1:4002:4004", "127.0.0.1"),
        ("[::1]:4002:4004", "::1"),
        ("4002:4004", ""),
        ("4004", ""),
        ("0.0.0.0:4002:4004", "0.0.0.0"),
        ({"target": 4004, "published": 4002, "host_ip": "127.0.0.1"}, "127.0.0.1"),
        ({"target": 4004, "published": 4002}, ""),
    ],
)
def test_the_host_address_of_a_port_mapping_is_read(
    mapping: str | dict[str, Any], host_ip: str
) -> None:
    assert published_host_ip(mapping) == host_ip


# ------------------------------------------------------------------ compose


def test_compose_runs_the_gateway_the_database_and_the_bot(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"ib-gateway", "postgres", "bot"}


def test_every_published_port_binds_loopback_only(compose: dict[str, Any]) -> None:
    published = {
        (name, str(mapping)): published_host_ip(mapping)
        for name, service in compose["services"].items()
        for mapping in service.get("ports") or []
    }
    assert published, "the paper API port should be published on the host's loopback"
    assert {key: ip for key, ip in published.items() if ip not in {"127.0.0.1", "::1"}} == {}


def test_no_service_uses_host_networking(compose: dict[str, Any]) -> None:
    modes = {name: s.get("network_mode") for name, s in compose["services"].items()}
    assert {name: mode for name, mode in modes.items() if mode == "host"} == {}


def test_no_secret_value_is_written_in_compose(compose: dict[str, Any]) -> None:
    inline = {
        (name, key): value
        for name, service in compose["services"].items()
        for key, value in _environment(service).items()
        if (SECRET_KEY.search(key) and not key.endswith("_FILE"))
        or CREDENTIALS_IN_URL.search(value)
    }
    assert inline == {}


def test_every_service_reads_its_secrets_from_an_env_file_with_an_example(
    compose: dict[str, Any],
) -> None:
    env_files = {name: _env_files(s) for name, s in compose["services"].items()}
    without_example = {
        (name, path)
        for name, paths in env_files.items()
        for path in paths
        if not (DEPLOY / f"{path}.example").is_file()
    }
    assert {name for name, paths in env_files.items() if not paths} == set()
    assert without_example == set()


def test_the_gateway_runs_ibc_in_paper_mode_with_unattended_restarts(
    compose: dict[str, Any],
) -> None:
    gateway = compose["services"]["ib-gateway"]
    env = _environment(gateway)
    assert gateway["image"] == "ghcr.io/gnzsnz/ib-gateway:stable"
    assert env["TRADING_MODE"] == "paper"
    assert env["TWOFA_TIMEOUT_ACTION"] == "restart"
    assert env["EXISTING_SESSION_DETECTED_ACTION"] == "primary"
    assert re.fullmatch(r"(0[1-9]|1[0-2]):[0-5]\d (AM|PM)", env["AUTO_RESTART_TIME"])
    assert "127.0.0.1:4002:4004" in gateway["ports"]


@pytest.mark.parametrize("dependency", ["postgres", "ib-gateway"])
def test_the_bot_waits_for_a_healthy_dependency(compose: dict[str, Any], dependency: str) -> None:
    services = compose["services"]
    assert services["bot"]["depends_on"][dependency]["condition"] == "service_healthy"
    assert services[dependency]["healthcheck"]["test"]


def test_postgres_keeps_its_data_in_a_volume_and_is_checked_with_pg_isready(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_the_bot_is_built_from_the_repository_and_talks_to_the_gateway_service(
    compose: dict[str, Any],
) -> None:
    bot = compose["services"]["bot"]
    env = _environment(bot)
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY.parent / bot["build"]["dockerfile"]).is_file()
    assert env["QS_DAEMON__BROKER"] == "ibkr"
    assert env["QS_IBKR__HOST"] == "ib-gateway"
    # Inside the compose network the image's socat relay (4004) is the reachable paper API port.
    assert env["QS_IBKR__PORT"] == "4004"
    assert "QS_DATABASE__URL" in env_file_entries(DEPLOY / "env" / "bot.env.example")


def test_the_bot_mounts_its_config_read_only_and_keeps_state_and_logs_in_volumes(
    compose: dict[str, Any],
) -> None:
    volumes = compose["services"]["bot"]["volumes"]
    assert f"../config/config.yaml:{CONFIG_IN_CONTAINER}:ro" in volumes
    targets = {v.split(":")[1] for v in volumes}
    assert {"/var/lib/quant-scalper/var", "/var/lib/quant-scalper/logs"} <= targets


def test_the_bot_gets_time_to_stop_gracefully(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert bot.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert duration_seconds(bot["stop_grace_period"]) >= MIN_STOP_SECONDS


# ------------------------------------------------------------------ env file examples


@pytest.mark.parametrize(
    "name", ["bot.env.example", "ib-gateway.env.example", "postgres.env.example"]
)
def test_env_examples_hold_placeholders_not_secrets(name: str) -> None:
    entries = env_file_entries(DEPLOY / "env" / name)
    secrets = {k: v for k, v in entries.items() if SECRET_KEY.search(k) and v}
    real_looking = {
        k: v
        for k, v in secrets.items()
        if "change-me" not in v and not v.startswith("/run/secrets/")
    }
    assert real_looking == {}


def test_the_gateway_env_example_never_selects_live_trading() -> None:
    entries = env_file_entries(DEPLOY / "env" / "ib-gateway.env.example")
    assert entries.get("TRADING_MODE", "paper") == "paper"
    assert {"TWS_USERID", "TWS_PASSWORD"} <= set(entries)


def test_the_bot_database_url_matches_the_postgres_env_example() -> None:
    bot = env_file_entries(DEPLOY / "env" / "bot.env.example")
    postgres = env_file_entries(DEPLOY / "env" / "postgres.env.example")
    expected = (
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert bot["QS_DATABASE__URL"] == expected


# ------------------------------------------------------------------ Dockerfile


@pytest.fixture(scope="module")
def stages() -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    return dockerfile_stages(DEPLOY / "Dockerfile")


def test_the_wheel_is_built_with_maturin_in_a_rust_and_python_builder_stage(
    stages: list[tuple[str, str | None, list[tuple[str, str]]]],
) -> None:
    base, name, instructions = stages[0]
    runs = " ".join(shell_words(args) for instr, args in instructions if instr == "RUN")
    assert name == "builder"
    assert base.startswith("python:3.11")
    assert "rustup" in runs
    assert "maturin build" in runs
    assert "--release" in runs


def test_the_runtime_stage_is_slim_and_installs_the_builders_wheel(
    stages: list[tuple[str, str | None, list[tuple[str, str]]]],
) -> None:
    base, _, instructions = stages[-1]
    copies_from_builder = [
        args for instr, args in instructions if instr == "COPY" and "--from=builder" in args
    ]
    runs = " ".join(shell_words(args) for instr, args in instructions if instr == "RUN")
    assert len(stages) >= 2
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base)
    assert copies_from_builder
    assert re.search(r"pip install [^&]*\.whl", runs)
    assert "maturin" not in runs
    assert "rustup" not in runs


def test_the_runtime_runs_as_a_non_root_user(
    stages: list[tuple[str, str | None, list[tuple[str, str]]]],
) -> None:
    instructions = stages[-1][2]
    users = [args.split(":")[0] for instr, args in instructions if instr == "USER"]
    last_user_at = max(i for i, (instr, _) in enumerate(instructions) if instr == "USER")
    command_at = max(
        i for i, (instr, _) in enumerate(instructions) if instr in {"CMD", "ENTRYPOINT"}
    )
    assert users
    assert users[-1] not in {"root", "0"}
    assert last_user_at < command_at


def test_the_container_migrates_the_store_then_runs_the_daemon(
    stages: list[tuple[str, str | None, list[tuple[str, str]]]],
) -> None:
    instructions = stages[-1][2]
    command = " ".join(
        shell_words(args) for instr, args in instructions if instr in {"ENTRYPOINT", "CMD"}
    )
    upgrade = f"quant-scalper db upgrade --config {CONFIG_IN_CONTAINER}"
    run = f"exec quant-scalper run --config {CONFIG_IN_CONTAINER}"
    assert upgrade in command
    assert run in command
    assert command.index(upgrade) < command.index(run)
    assert f"{upgrade} && " in command  # the daemon starts only after a successful migration


# ------------------------------------------------------------------ systemd unit


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return systemd_sections(DEPLOY / "quant-scalper.service")["Service"]


def test_the_unit_restarts_on_failure_as_a_non_root_user(service: dict[str, list[str]]) -> None:
    assert service["Restart"] == ["on-failure"]
    assert service["User"][-1] not in {"", "root", "0"}


def test_the_unit_stops_with_sigterm_and_waits_for_the_graceful_exit(
    service: dict[str, list[str]],
) -> None:
    assert service["KillSignal"] == ["SIGTERM"]
    assert duration_seconds(service["TimeoutStopSec"][-1]) >= MIN_STOP_SECONDS


def test_the_unit_reads_secrets_from_an_environment_file_only(
    service: dict[str, list[str]],
) -> None:
    inline = [
        value
        for value in service.get("Environment", [])
        if SECRET_KEY.search(value.split("=", 1)[0]) or CREDENTIALS_IN_URL.search(value)
    ]
    assert service["EnvironmentFile"]
    assert inline == []


def test_the_unit_runs_the_daemon_on_ib_gateway_not_the_simulated_default(
    service: dict[str, list[str]],
) -> None:
    assert "QS_DAEMON__BROKER=ibkr" in service["Environment"]


def test_the_bot_has_a_health_check_on_healthz(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    port = _environment(bot)["QS_OBSERVABILITY__PORT"]
    check = " ".join(bot["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert duration_seconds(bot["healthcheck"]["start_period"]) >= 60


def test_the_unit_is_hardened(service: dict[str, list[str]]) -> None:
    assert service["NoNewPrivileges"][-1] in {"yes", "true", "1", "on"}
    assert service["ProtectSystem"][-1] in {"strict", "full", "yes", "true"}


def test_the_unit_and_its_directories_are_private_to_the_bots_user(
    service: dict[str, list[str]],
) -> None:
    assert service["UMask"][-1] == "0077"
    assert service["StateDirectoryMode"][-1] == "0700"
    assert service["LogsDirectoryMode"][-1] == "0700"


def test_the_container_creates_files_private_to_the_bots_user(
    stages: list[tuple[str, str | None, list[tuple[str, str]]]],
) -> None:
    instructions = stages[-1][2]
    command = " ".join(
        shell_words(args) for instr, args in instructions if instr in {"ENTRYPOINT", "CMD"}
    )
    assert command.startswith("sh -c umask 077 && ")


def test_the_unit_migrates_the_store_then_runs_the_daemon(service: dict[str, list[str]]) -> None:
    assert any(
        v.endswith("quant-scalper db upgrade --config " + CONFIG_IN_CONTAINER)
        for v in service["ExecStartPre"]
    )
    assert service["ExecStart"][-1].endswith("quant-scalper run --config " + CONFIG_IN_CONTAINER)
