"""Files only the bot's user may read: the journal, its spool, snapshots and logs hold positions,
P&L and operator ids. Files are created 0600 and directories 0700, whatever the umask; a file an
older version left readable to others is tightened when opened. (The deployment sets umask 077 as
well, for anything a library creates.)"""

from __future__ import annotations

import io
import logging.handlers
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """``path`` and any missing parents, each one created 0700 (existing ones are left alone)."""
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)  # mkdir's mode passes through the umask


def tighten(path: Path) -> None:
    """Take away every permission of group and others from an existing file (no-op if missing)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)


def private_file(path: Path) -> None:
    """Create ``path`` empty with 0600 if it does not exist (so that whoever opens it next, SQLite
    included, finds it private); tighten it if it does."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return
    os.close(fd)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with ``O_CREAT`` and mode 0600; an existing file is tightened."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, os.fstat(fd).st_mode & 0o700)
    return fd


def sqlite_files(database: Path) -> None:
    """A SQLite database file created (or tightened) private before SQLite opens it; SQLite gives
    its ``-wal`` and ``-shm`` files the database file's permissions, and existing ones are
    tightened."""
    private_file(database)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(database.with_name(database.name + suffix))


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are created 0600 (each new one too), whatever the umask, in a
    directory created 0700."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        private_dir(path.parent)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def _open(self) -> io.TextIOWrapper:
        fd = open_private(Path(self.baseFilename), os.O_WRONLY | os.O_APPEND)
        return io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(fd, "a")), encoding=self.encoding, errors=self.errors
        )
