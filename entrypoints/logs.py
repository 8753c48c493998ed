"""The daemon's logs: the console and a rotating file under ``logging.dir``, as text or JSON lines.

The file gets everything at ``logging.level``; the console gets the bot's own lines and only the
warnings and errors of the libraries it uses.

Every line carries the trading session (the CME trade date of market time), the engine's state, and
the order key when the message names one (``QS-<epoch>-<seq>-E`` and the like), so a day's story can
be followed by grepping a key or a session.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

LOG_FILE: Final = "quant-scalper.log"
MAX_BYTES: Final = 10 * 1024 * 1024
BACKUPS: Final = 5

_ORDER_KEY = re.compile(r"\bQS-\d+-F?\d+-[ESTX]\b")
_HANDLER_MARK = "_quant_scalper_handler"

Context = Callable[[], Mapping[str, str]]
"""What the running daemon says about itself now: ``session`` and ``state``."""


class ContextFilter(logging.Filter):
    """Adds ``session``, ``state`` and ``order_key`` to every record."""

    def __init__(self, context: Context | None = None) -> None:
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        facts: Mapping[str, str] = {}
        if self.context is not None:
            try:
                facts = self.context()
            except Exception:  # a log line must never fail because the context could not be read
                facts = {}
        record.session = facts.get("session", "-")
        record.state = facts.get("state", "-")
        key = getattr(record, "order_key", None)
        if not key:
            found = _ORDER_KEY.search(record.getMessage())
            key = found.group(0) if found else "-"
        record.order_key = key
        return True


_OWN_LOGGERS: Final = ("quant_scalper", "adapters", "application", "entrypoints", "domain")


class ConsoleFilter(logging.Filter):
    """The console shows the bot's own lines and only the warnings and errors of the libraries
    under it (alembic's migration chatter, ib_async's connection notices and aiogram's polling
    stay in the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        name = record.name
        return any(name == own or name.startswith(own + ".") for own in _OWN_LOGGERS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message and the context fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session": getattr(record, "session", "-"),
            "state": getattr(record, "state", "-"),
            "order_key": getattr(record, "order_key", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT: Final = (
    "%(asctime)s %(levelname)s %(name)s [%(session)s %(state)s %(order_key)s]: %(message)s"
)


def configure(
    *,
    level: str,
    fmt: str,
    directory: Path | None,
    context: Context | None = None,
    stream: object = None,
) -> ContextFilter:
    """Send the root logger to the console and (with ``directory``) a rotating file.

    Returns the context filter, whose ``context`` the daemon sets once it is running. Calling it
    again replaces the handlers it installed before (never anyone else's).
    """
    uninstall()
    root = logging.getLogger()
    context_filter = ContextFilter(context)
    formatter: logging.Formatter = (
        JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    )
    console = logging.StreamHandler(stream if stream is not None else sys.stderr)  # type: ignore[arg-type]
    console.addFilter(ConsoleFilter())
    handlers: list[logging.Handler] = [console]
    if directory is not None:
        # The composition root makes the private file (and its directory), only when one is kept.
        from entrypoints.container import private_log_file  # noqa: PLC0415

        handlers.append(private_log_file(directory / LOG_FILE, MAX_BYTES, BACKUPS))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(context_filter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    return context_filter


def set_context(context: Context | None) -> None:
    """Tell the installed handlers what the running daemon is (None: nothing runs)."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, _HANDLER_MARK, False):
            for item in handler.filters:
                if isinstance(item, ContextFilter):
                    item.context = context


def uninstall() -> None:
    """Remove the handlers :func:`configure` installed (closing the log file)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
        handler.close()


def record_in_file(message: str, exc: BaseException) -> Path | None:
    """``message`` and ``exc``'s traceback, to the installed log file only (the console gets one
    line from the caller). The file's path, or None when no log file is installed."""
    record = logging.getLogger("quant_scalper").makeRecord(
        "quant_scalper",
        logging.CRITICAL,
        __file__,
        0,
        message,
        (),
        (type(exc), exc, exc.__traceback__),
    )
    written = None
    for handler in logging.getLogger().handlers:
        if getattr(handler, _HANDLER_MARK, False) and isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()
            written = Path(handler.baseFilename)
    return written
