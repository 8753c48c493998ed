"""The journal's durable local spool: an append-only file of JSON lines, fsync'd per batch.

While the database is unreachable the journal writes here instead, and replays the lines in order
when it returns (inserts are idempotent, so a replay cut short by a crash is simply replayed again).
Lines that can never be written (they do not decode, or the database refuses them) go to a
``.rejected`` file beside the spool with the reason, instead of blocking the lines behind them.

Synchronous and blocking: the journal calls it through ``asyncio.to_thread``, from one task only.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from adapters.private_files import open_private, private_dir, tighten

log = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolInUseError(RuntimeError):
    """Another journal holds the spool."""


class Spool:
    """Lines appended durably, read back in order from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._lock_path = path.with_name(path.name + ".lock")
        self._lock: int | None = None
        self._offset = 0  # bytes already read back (and written to the database) in this process

    def open(self) -> int:
        """Take the spool for this process and prepare it; returns how many lines are waiting in it
        (from an earlier run).

        Two journals on one spool would replay each other's records into their own databases, so a
        second one is refused (an exclusive lock, released by :meth:`close` or by the process's end).
        A last line without its newline is a write that a crash cut short (the batch it belonged to
        was never confirmed durable): it is cut off, so that new lines do not run into it.
        """
        private_dir(self.path.parent)
        tighten(self.path)
        tighten(self.rejected_path)
        if self._lock is None:
            fd = open_private(self._lock_path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise SpoolInUseError(
                    f"journal spool {self.path} is in use by another journal "
                    "(another quant-scalper on the same data_dir?)"
                ) from None
            self._lock = fd
        self._offset = 0
        if not self.path.exists():
            return 0
        with self.path.open("r+b") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                log.warning(
                    "journal spool %s: dropping %d bytes of a write cut short by a crash",
                    self.path,
                    len(data) - end,
                )
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        return data[:end].count(b"\n")

    def close(self) -> None:
        """Let another journal take the spool."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def pending(self) -> bool:
        """Whether lines are waiting to be read back."""
        try:
            return self.path.stat().st_size > self._offset
        except FileNotFoundError:
            return False

    def append(self, lines: Sequence[str]) -> None:
        """Append lines and make them durable (fsync) before returning."""
        if not lines:
            return
        created = not self.path.exists()
        payload = "".join(line + "\n" for line in lines).encode()
        with os.fdopen(open_private(self.path, os.O_WRONLY | os.O_APPEND), "ab") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if created:
            _fsync_dir(self.path.parent)

    def read(self, max_lines: int) -> tuple[list[str], int]:
        """Up to ``max_lines`` lines after the last consumed one, and the offset just past them."""
        lines: list[str] = []
        offset = self._offset
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return lines, offset
        with f:
            f.seek(offset)
            while len(lines) < max_lines:
                raw = f.readline()
                if not raw.endswith(b"\n"):
                    break
                offset += len(raw)
                lines.append(raw[:-1].decode("utf-8", errors="replace"))
        return lines, offset

    def consume(self, offset: int) -> None:
        """Mark everything before ``offset`` as written to the database."""
        self._offset = offset

    def clear(self) -> None:
        """Remove the spool once every line in it is in the database."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        else:
            _fsync_dir(self.path.parent)
        self._offset = 0

    def reject(self, line: str, reason: str) -> None:
        """Set a line aside for good, with the reason (durably: it is out of the spool after this)."""
        log.error("journal: setting aside a record the database refuses (%s): %s", reason, line)
        flags = os.O_WRONLY | os.O_APPEND
        with os.fdopen(open_private(self.rejected_path, flags), "a", encoding="utf-8") as f:
            f.write(json.dumps({"reason": reason, "line": line}) + "\n")
            f.flush()
            os.fsync(f.fileno())
