"""The daemon starts without the report's plotting libraries: Bokeh (report.html) and matplotlib
(equity.png, /chart) load only when a report or a chart is made. A second of importing on the
daemon's start-up or event loop is a second of market time not watched."""

from __future__ import annotations

import subprocess
import sys


def test_the_daemon_and_its_bot_import_no_plotting_library() -> None:
    code = (
        "import sys\n"
        "import entrypoints.daemon, entrypoints.telegram.dispatcher\n"
        "print(sorted(m for m in ('bokeh', 'matplotlib') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=True
    )
    assert done.stdout.strip() == "[]"
