"""The results file of a sweep: one JSON line per finished trial, appended as each one finishes.

A line is written whole and flushed before the next trial's result is taken, so an interrupted
sweep leaves every finished trial on disk and at most a torn last line, which :meth:`ResultsFile.load`
cuts off. Trials are found by key: a re-run computes only the keys the file lacks.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

RESULTS_NAME = "results.jsonl"


class ResultsFileError(Exception):
    """The results file cannot be used; ``str()`` is one line."""


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        """The records in the file by key (a torn last line, from an interrupted write, is cut)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ResultsFileError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        *lines, tail = data.split(b"\n")
        if tail:  # a last line without its newline: a write cut short; that trial runs again
            self._cut(len(data) - len(tail))
        records: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = record["key"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ResultsFileError(
                    f"{self.path}: line {number} is not a trial record ({exc}); "
                    "move the file away to start afresh"
                ) from exc
            records[str(key)] = record
        return records

    def _cut(self, size: int) -> None:
        try:
            with self.path.open("r+b") as handle:
                handle.truncate(size)
        except OSError as exc:
            raise ResultsFileError(f"{self.path}: cannot cut a torn last line: {exc}") from exc

    def append(self, line: str) -> None:
        """Add one record (a JSON line without its newline) and flush it to disk."""
        with self.path.open("a", encoding="utf-8", newline="\n") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def trade_pnls(record: dict[str, Any]) -> list[Decimal]:
    """A record's per-trade net P&L in closing order, exact."""
    return [Decimal(p) for p in record["trade_pnl_usd"]]


def open_results(out: Path) -> tuple[ResultsFile, dict[str, dict[str, Any]]]:
    """The results file in the folder ``out`` (made if missing) and the records it holds already.
    Raises ``OSError`` when the folder cannot be made, :class:`ResultsFileError` when the file
    cannot be used."""
    out.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(out / RESULTS_NAME)
    return results, results.load()
