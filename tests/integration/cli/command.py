"""The installed ``quant-scalper`` command as a user runs it: a real process, its exit code and its
error lines; optionally as the unprivileged user ``nobody``.

The suite runs as root, whom file permissions do not stop: to test an unreadable or unwritable
file, the command runs as ``nobody`` (uid 65534, through util-linux ``setpriv``) on files with the
real permissions, in a directory that user can search (:func:`shared_directory`). Run as any other
user, the command simply runs as that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
COMMAND = str(Path(sys.executable).parent / "quant-scalper")
NOBODY = 65534


def run_command(
    *argv: str, env: dict[str, str] | None = None, as_nobody: bool = False
) -> tuple[int, list[str]]:
    """Exit code and the error lines (standard error without warnings and library log lines);
    asserts that no traceback was shown."""
    prefix: list[str] = []
    if as_nobody and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop privileges")
        prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        probe = subprocess.run(
            [*prefix, "test", "-x", COMMAND], check=False, cwd="/", capture_output=True, timeout=30
        )
        if probe.returncode != 0:
            pytest.skip(
                f"nobody cannot run {COMMAND} (a directory above the checkout is not "
                "world-searchable, e.g. a mktemp -d clone): cannot test as an unprivileged user"
            )
    done = subprocess.run(
        [*prefix, COMMAND, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    errors = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("error") or line.startswith("quant-scalper replay: error:")
    ]
    return done.returncode, errors


@contextmanager
def shared_directory() -> Iterator[Path]:
    """A directory the unprivileged user can search and write (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="qs-cli-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def nobody_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment for a command run as ``nobody``: a home it can write, and ``settings``."""
    return {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home / "mpl"), **settings}
