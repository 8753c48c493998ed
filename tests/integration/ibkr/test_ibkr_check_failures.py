"""``quant-scalper ibkr-check`` fails with one clear line and exit 4 when the Gateway is unusable.

The command runs as a real process; the servers it talks to run in the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from entrypoints.cli import EXIT_UNAVAILABLE

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _server(handle: Handler) -> AsyncIterator[int]:
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await handle(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def _frame(*fields: str) -> bytes:
    payload = b"".join(f.encode() + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1 << 16)  # reads the hello, answers nothing


async def _version_200(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1 << 16)
    writer.write(_frame("200", "20261124 22:47:04 UTC"))
    await writer.drain()
    await reader.read(1 << 16)  # startApi
    writer.write(_frame("9", "1", "1") + _frame("15", "1", "DU1"))
    await writer.drain()


async def _check(port: int, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "QS_IBKR__PORT": str(port),
        "QS_IBKR__CONNECT_TIMEOUT_S": "0.5",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        "ibkr-check",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def test_nothing_listening_is_one_line_and_exit_4() -> None:
    port = _free_port()
    code, _, err = await _check(port)
    assert code == EXIT_UNAVAILABLE
    assert f"nothing is listening on 127.0.0.1:{port}" in _one_error_line(err)


async def test_a_port_that_never_speaks_tws_times_out_with_one_line() -> None:
    async with _server(_silent) as port:
        code, out, err = await _check(port, "--json")
    assert code == EXIT_UNAVAILABLE
    assert "no API session started in time" in _one_error_line(err)
    answer = json.loads(out)
    assert answer["ok"] is False
    assert "no API session started" in answer["error"]


async def test_a_server_version_above_178_is_refused() -> None:
    async with _server(_version_200) as port:
        code, _, err = await _check(port)
    assert code == EXIT_UNAVAILABLE
    assert "refused the API version handshake (server version 200)" in _one_error_line(err)
