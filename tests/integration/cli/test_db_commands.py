"""``db upgrade`` and ``db current``, and every journal command refusing a store without the schema in
one line that names the command to run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from adapters.sql import migrate
from adapters.sql.database import SQLITE_FILE, describe
from entrypoints.cli import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, main
from tests.integration.cli.journal_store import Store, error_lines
from tests.support.postgres import create_database, drop_database


def test_db_upgrade_creates_the_store_and_db_current_names_its_revision(
    empty_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["--config", str(empty_store.config)]
    head = migrate.head()
    assert main(["db", "current", *config]) == EXIT_OK
    assert capsys.readouterr().out == "empty\n"
    assert not empty_store.data_dir.exists()  # looking does not create the SQLite file

    for _ in range(2):  # a second upgrade finds nothing to do and says the same
        assert main(["db", "upgrade", *config]) == EXIT_OK
        assert capsys.readouterr().out == f"database at {head} ({describe(empty_store.url)})\n"
    if empty_store.kind == "sqlite":
        assert (empty_store.data_dir / SQLITE_FILE).is_file()

    assert main(["db", "current", *config]) == EXIT_OK
    assert capsys.readouterr().out == f"{head}\n"
    assert migrate.check_schema(empty_store.url) is None


def test_db_upgrade_takes_the_url_from_the_environment_and_hides_its_password(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = make_url(create_database(postgres_url, "qs_cli_env"))
    try:
        # The suite's own server trusts loopback, so a password there is accepted and unused.
        password = url.password or "not-shown-anywhere"
        libpq = url.set(drivername="postgresql", password=password)
        monkeypatch.setenv("QS_DATABASE__URL", libpq.render_as_string(hide_password=False))
        monkeypatch.setenv("QS_DATABASE__DATA_DIR", str(tmp_path / "unused"))
        assert main(["db", "upgrade"]) == EXIT_OK
        out = capsys.readouterr().out
        shown = url.set(drivername="postgresql+psycopg", password=password)
        assert out == f"database at {migrate.head()} ({shown.render_as_string()})\n"
        assert str(password) not in out
        assert "***" in out
        assert main(["db", "current"]) == EXIT_OK
        assert capsys.readouterr().out == f"{migrate.head()}\n"
        assert not (tmp_path / "unused").exists()
    finally:
        drop_database(postgres_url, url.render_as_string(hide_password=False))


COMMANDS = {
    "replay --from-db": ["replay", "--from-db", "--start", "2025-03-04", "--end", "2025-03-05"],
    "trades export": ["trades", "export", "--csv", "{tmp}/trades.csv"],
    "report --session": ["report", "--session", "2025-03-04", "--report", "{tmp}/report"],
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_every_journal_command_refuses_a_store_without_the_schema_in_one_line(
    empty_store: Store, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.format(tmp=tmp_path) for arg in command]
    assert main([*argv, "--config", str(empty_store.config)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = error_lines(captured.err)
    assert len(lines) == 1, captured.err
    assert f"run `quant-scalper db upgrade --config {empty_store.config}`" in lines[0]
    assert "no schema" in lines[0]
    assert not empty_store.data_dir.exists()
    assert not (tmp_path / "trades.csv").exists()
    assert not (tmp_path / "report").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


@pytest.mark.parametrize(
    "command",
    [["db", "current"], ["db", "upgrade"], ["trades", "export", "--csv", "-"]],
    ids=" ".join,
)
def test_an_unreachable_database_is_one_line_without_the_password(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    monkeypatch.setenv("QS_DATABASE__URL", f"postgresql://quant:s3cret@127.0.0.1:{port}/journal")
    assert main(command) == EXIT_UNAVAILABLE
    captured = capsys.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: database postgresql+psycopg://quant:***@127.0.0.1:{port}/")
    assert "s3cret" not in captured.err + captured.out


def test_a_database_url_of_another_kind_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QS_DATABASE__URL", "mysql://quant:s3cret@db.example/journal")
    assert main(["db", "upgrade"]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert "unsupported scheme 'mysql'" in lines[0]
    assert "s3cret" not in lines[0]
