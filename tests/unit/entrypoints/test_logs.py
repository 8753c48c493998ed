"""The daemon's log lines: console and rotating file, text or JSON, with session, state, order key."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints import logs


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _context() -> dict[str, str]:
    return {"session": "2026-11-24", "state": "LONG"}


def test_json_lines_carry_the_session_the_state_and_the_order_key(tmp_path: Path) -> None:
    console = io.StringIO()
    logs.configure(level="INFO", fmt="json", directory=tmp_path, stream=console)
    logs.set_context(_context)
    logging.getLogger("quant_scalper.test").info("placed QS-1795533060-12-S at 4980")
    logging.getLogger("quant_scalper.test").warning("no key here")
    lines = [json.loads(line) for line in (tmp_path / logs.LOG_FILE).read_text().splitlines()]
    assert [(d["session"], d["state"], d["order_key"]) for d in lines] == [
        ("2026-11-24", "LONG", "QS-1795533060-12-S"),
        ("2026-11-24", "LONG", "-"),
    ]
    assert lines[0]["message"] == "placed QS-1795533060-12-S at 4980"
    assert lines[1]["level"] == "WARNING"
    assert lines[0]["ts"].endswith("+00:00")
    assert console.getvalue().count("\n") == 2  # the console gets the same lines


def test_text_lines_show_the_same_fields_and_the_file_rotates(tmp_path: Path) -> None:
    logs.configure(level="INFO", fmt="text", directory=tmp_path, stream=io.StringIO())
    logs.set_context(_context)
    logging.getLogger("quant_scalper.test").info("flatten QS-1795533060-F1-X sent")
    text = (tmp_path / logs.LOG_FILE).read_text()
    assert "[2026-11-24 LONG QS-1795533060-F1-X]: flatten" in text
    rotating = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert [(h.maxBytes, h.backupCount) for h in rotating] == [(logs.MAX_BYTES, logs.BACKUPS)]


def test_no_context_and_a_failing_one_still_log(tmp_path: Path) -> None:
    logs.configure(level="INFO", fmt="json", directory=tmp_path, stream=io.StringIO())
    logging.getLogger("quant_scalper.test").info("before the daemon runs")

    def broken() -> dict[str, str]:
        raise RuntimeError("engine not built yet")

    logs.set_context(broken)
    logging.getLogger("quant_scalper.test").info("while it cannot say")
    lines = [json.loads(line) for line in (tmp_path / logs.LOG_FILE).read_text().splitlines()]
    assert [(d["session"], d["state"]) for d in lines] == [("-", "-"), ("-", "-")]


def test_configuring_again_replaces_only_its_own_handlers(tmp_path: Path) -> None:
    foreign = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(foreign)
    logs.configure(level="INFO", fmt="text", directory=None, stream=io.StringIO())
    logs.configure(level="DEBUG", fmt="json", directory=tmp_path, stream=io.StringIO())
    mine = [h for h in logging.getLogger().handlers if getattr(h, "_quant_scalper_handler", False)]
    assert len(mine) == 2  # console and file of the second call only
    assert foreign in logging.getLogger().handlers
    logging.getLogger().removeHandler(foreign)


def test_the_libraries_info_chatter_stays_in_the_file_and_their_warnings_reach_the_console(
    tmp_path: Path,
) -> None:
    console = io.StringIO()
    logs.configure(level="INFO", fmt="text", directory=tmp_path, stream=console)
    logging.getLogger("aiogram.dispatcher").info("Running polling")
    logging.getLogger("ib_async.client").info("Connected")
    logging.getLogger("ib_async.wrapper").warning("Error 1100: connectivity lost")
    logging.getLogger("quant_scalper.daemon").info("alive")
    logging.getLogger("adapters.ibkr.session").info("reconnected")
    shown = console.getvalue()
    assert "Running polling" not in shown
    assert "Connected" not in shown
    assert "Error 1100" in shown
    assert "alive" in shown
    assert "reconnected" in shown
    kept = (tmp_path / logs.LOG_FILE).read_text()
    for text in ("Running polling", "Connected", "Error 1100", "alive", "reconnected"):
        assert text in kept
