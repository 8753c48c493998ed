"""IbClient.connect over a real socket, without a TWS behind it."""

from __future__ import annotations

import asyncio

import pytest

from adapters.ibkr.client import IbClient
from tests.support.polling import eventually

pytestmark = pytest.mark.timeout(60)


async def test_a_cancelled_connect_closes_its_socket_and_leaves_no_attempt_behind() -> None:
    """A stop while connecting cancels connect(): ib_async's own attempt must end with it, or
    the connection would complete after the daemon stopped, holding the client id."""
    peers: list[asyncio.StreamReader] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(reader)
        try:
            await reader.read()  # a Gateway that never answers the handshake; EOF when we close
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = IbClient(host="127.0.0.1", port=port, client_id=1, connect_timeout_s=30)
    before = set(asyncio.all_tasks())
    connecting = asyncio.get_running_loop().create_task(client.connect())
    await eventually(lambda: bool(peers), "the connection accepted")
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    # ib_async's attempt ended with connect(): nothing left to complete the connection later.
    left = {t for t in asyncio.all_tasks() if not t.done()} - before - {asyncio.current_task()}
    assert left == set()
    await eventually(peers[0].at_eof, "the socket closed by the cancel")
    assert not client.connected
    server.close()
    await server.wait_closed()
