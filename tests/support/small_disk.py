"""A real, small filesystem for full-disk tests: a tmpfs mounted for the test (root only)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (created), unmounted after. Skips the test, saying
    why, where it cannot be mounted (not root, no mount(8), a container without the capability)."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"full-disk test skipped: cannot run mount(8) for a {size} tmpfs: {exc}")
    if mounted.returncode != 0:
        why = (mounted.stderr or mounted.stdout).strip() or f"exit {mounted.returncode}"
        pytest.skip(f"full-disk test skipped: cannot mount a {size} tmpfs at {where}: {why}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30, check=False)


def fill(disk: Path, name: str = "filler") -> Path:
    """Fill ``disk`` to the last byte with one file; returns it (delete it to free the disk)."""
    path = disk / name
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    return path
