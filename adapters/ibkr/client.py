"""Our thin client over ``ib_async.IB``: the few calls the adapter makes, and nothing else.

It owns the IB object, checks the negotiated server version (ib_async 2.x speaks the classic text
protocol, which IB serves up to version 178; above that the messages change and 2.x would
mis-decode them), turns connect failures into one classified error, and sends every historical
request through the pacing limiter. Callers get ib_async objects back but never pass them out of
``adapters/ibkr``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from ib_async import (
    IB,
    BarDataList,
    CommissionReport,
    Contract,
    ContractDetails,
    ExecutionFilter,
    Fill,
    Order,
    OrderState,
    Position,
    RealTimeBarList,
    Trade,
)

from adapters.ibkr.backoff import (
    MAX_SERVER_VERSION,
    ConnectFailure,
    ConnectionClosedEarly,
    classify_connect_failure,
)
from adapters.ibkr.pacing import PacingLimiter

ErrorHandler = Callable[[int, int, str], None]
"""(reqId, errorCode, errorString)."""


class HistoryUnavailable(ConnectionError):
    """IB ended a historical data request with an error other than "no data": ask again later."""


def _no_data(code: int, text: str) -> bool:
    """An answer, not a failure: IB's "HMDS query returned no data" (there are no bars), or a
    notice (165 "HMDS query message", 2100-2199 farm and data warnings, 10167 delayed data)."""
    if code in (165, 10167) or 2100 <= code < 2200:
        return True
    return code == 162 and "returned no data" in text.lower()


class IbConnectError(ConnectionError):
    """Connecting to IB Gateway failed; ``failure`` says how, ``str()`` is one line for a human."""

    def __init__(self, failure: ConnectFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


class IbClient:
    """One API connection to IB Gateway or TWS."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: int,
        account: str | None = None,
        readonly: bool = False,
        connect_timeout_s: float = 10.0,
        request_timeout_s: float = 10.0,
        limiter: PacingLimiter | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.readonly = readonly
        self._account = account or ""
        self._connect_timeout = connect_timeout_s
        self._request_timeout = request_timeout_s
        self._limiter = limiter
        self._rt_requests = 0
        self.connections = 0
        """Connections made so far: a request made on an earlier one died with it."""
        self.ib = IB()
        self.ib.RaiseRequestErrors = False
        self._terms: dict[int, tuple[str, bool]] = {}
        self._open_orders_lock = asyncio.Lock()
        # ib_async keeps its own copy of an order it placed: IB's openOrder does not update that
        # copy's time in force or outsideRth (a TIF preset changes them). IB's word is kept here.
        relay_open_order = self.ib.wrapper.openOrder

        def open_order(order_id: int, contract: Contract, order: Order, state: OrderState) -> None:
            if not order.whatIf:
                self._terms[order.orderId] = (order.tif, bool(order.outsideRth))
            relay_open_order(order_id, contract, order, state)

        self.ib.wrapper.openOrder = open_order  # type: ignore[method-assign,assignment]

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and synchronise; raises :class:`IbConnectError` naming what went wrong."""
        codes: list[int] = []

        def on_error(req_id: int, code: int, text: str, contract: object = None) -> None:
            codes.append(code)

        # ib_async does not notice a socket closed before the API handshake (it waits out the
        # whole timeout): a Gateway waiting for its login behind a relay (the IB Gateway Docker
        # images' socat) does exactly that, on every attempt. The socket's own event ends it.
        loop = asyncio.get_running_loop()
        closed_early: asyncio.Future[None] = loop.create_future()
        socket = self.ib.client.conn
        answered = False
        # A previous socket still closing: ib_async waits for its close before opening this
        # attempt's, and that close is not this attempt's.
        old_closes = 1 if socket.transport is not None else 0

        def on_data(*_: object) -> None:
            nonlocal answered
            answered = True

        def on_socket_closed(*_: object) -> None:
            nonlocal old_closes
            if old_closes:
                old_closes -= 1
                return
            # Only before IB said a word: once it answered the handshake, IB closes for a reason
            # it gives (326, a version it refuses), which ib_async reports itself.
            if not answered and not closed_early.done():
                closed_early.set_result(None)

        self.ib.errorEvent += on_error
        socket.hasData += on_data
        socket.disconnected += on_socket_closed
        connecting = loop.create_task(
            self.ib.connectAsync(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self._connect_timeout,
                readonly=self.readonly,
                account=self._account,
            )
        )
        try:
            await asyncio.wait({connecting, closed_early}, return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
                raise ConnectionClosedEarly()
            await connecting
        except (ConnectionError, OSError, TimeoutError) as exc:
            version = self.server_version or None
            self.ib.disconnect()
            failure = classify_connect_failure(exc, error_codes=codes, server_version=version)
            raise self._error(failure, str(exc) or type(exc).__name__) from exc
        finally:
            if not connecting.done():  # we were cancelled (a stop): ib_async's attempt goes too
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
            closed_early.cancel()
            socket.disconnected -= on_socket_closed
            socket.hasData -= on_data
            self.ib.errorEvent -= on_error
        self.connections += 1
        version = self.server_version
        if version > MAX_SERVER_VERSION:
            self.ib.disconnect()
            raise self._error(ConnectFailure.VERSION_REFUSED, f"server version {version}")
        if not self._account:
            accounts = self.ib.managedAccounts()
            self._account = accounts[0] if len(accounts) == 1 else ""

    def _error(self, failure: ConnectFailure, detail: str) -> IbConnectError:
        return IbConnectError(
            failure, failure.message(self.host, self.port, self.client_id, detail)
        )

    def disconnect(self) -> None:
        self.ib.disconnect()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    @property
    def server_version(self) -> int:
        return int(self.ib.client.serverVersion() or 0)

    @property
    def account(self) -> str:
        return self._account

    def accounts(self) -> list[str]:
        return list(self.ib.managedAccounts())

    # -- events -------------------------------------------------------------------------------

    def on_error(self, handler: ErrorHandler) -> None:
        def relay(req_id: int, code: int, text: str, contract: object = None) -> None:
            handler(req_id, code, text)

        self.ib.errorEvent += relay

    def on_disconnected(self, handler: Callable[[], None]) -> None:
        self.ib.disconnectedEvent += handler

    def on_order_status(self, handler: Callable[[Trade], None]) -> None:
        self.ib.orderStatusEvent += handler

    def on_execution(self, handler: Callable[[Trade, Fill], None]) -> None:
        self.ib.execDetailsEvent += handler

    def on_commission(self, handler: Callable[[Trade, Fill, CommissionReport], None]) -> None:
        self.ib.commissionReportEvent += handler

    # -- contracts and data -------------------------------------------------------------------

    async def contract_details(self, contract: Contract) -> list[ContractDetails]:
        return list(
            await asyncio.wait_for(self.ib.reqContractDetailsAsync(contract), self._request_timeout)
        )

    async def realtime_bars(self, contract: Contract) -> RealTimeBarList:
        """Subscribe to 5-second TRADES bars, outside regular hours too."""
        if self._limiter is not None:
            # Real-time bars count toward pacing (60 requests per 10 minutes) but are neither an
            # "identical historical request" nor an open one: a resubscribe must not wait 15 s.
            self._rt_requests += 1
            await self._limiter.acquire(
                f"rt:{contract.conId}:{self._rt_requests}", f"{contract.conId}:TRADES"
            )
            self._limiter.release()
        return self.ib.reqRealTimeBars(contract, 5, "TRADES", False)

    def cancel_realtime_bars(self, bars: RealTimeBarList) -> None:
        if self.connected:
            self.ib.cancelRealTimeBars(bars)

    async def historical_bars(
        self, contract: Contract, end: datetime, duration_s: int, bar_size: str
    ) -> BarDataList:
        """Bars ending at ``end`` (UTC) over ``duration_s`` seconds, dated in UTC (formatDate 2)."""
        key = f"hist:{contract.conId}:{end.isoformat()}:{duration_s}:{bar_size}"
        if self._limiter is not None:
            await self._limiter.acquire(key, f"{contract.conId}:TRADES")
        errors: list[tuple[int, int, str]] = []

        def on_error(req_id: int, code: int, text: str, contract: object = None) -> None:
            errors.append((req_id, code, text))

        self.ib.errorEvent += on_error
        try:
            bars = await self.ib.reqHistoricalDataAsync(
                contract,
                end.astimezone(UTC),
                f"{duration_s} S",
                bar_size,
                "TRADES",
                useRTH=False,
                formatDate=2,
                timeout=self._request_timeout,
            )
        finally:
            self.ib.errorEvent -= on_error
            if self._limiter is not None:
                self._limiter.release()
        wrapper = self.ib.wrapper
        if wrapper._futures.pop(bars.reqId, None) is not None:
            # ib_async answers a timed-out request with an empty list, as if IB had no bars, and
            # leaves its future behind: say what it was, so the caller can try again.
            wrapper._results.pop(bars.reqId, None)
            raise TimeoutError(f"no historical data answer in {self._request_timeout:g} s")
        for req_id, code, text in errors:
            if req_id == bars.reqId and not _no_data(code, text):
                # A pacing violation, a query IB cancelled (a farm reconnecting), too many open
                # requests: ib_async ends the request with what it had; it was not an answer.
                raise HistoryUnavailable(f"historical data error {code}: {text}")
        return bars

    # -- orders and account -------------------------------------------------------------------

    def next_order_id(self) -> int:
        return int(self.ib.client.getReqId())

    def place(self, contract: Contract, order: Order) -> Trade:
        return self.ib.placeOrder(contract, order)

    def held_terms(self, order_id: int) -> tuple[str, bool] | None:
        """(time in force, outsideRth) of ``order_id`` as IB last reported it in an openOrder."""
        return self._terms.get(order_id)

    def cancel(self, order: Order) -> None:
        self.ib.cancelOrder(order)

    def open_trades(self) -> list[Trade]:
        return list(self.ib.openTrades())

    async def open_orders(self) -> list[Trade]:
        """The orders IB holds working for this client now (asked, not ib_async's local view).

        One at a time: ib_async keys this request by name, so a second one in flight would take
        the first one's answer and leave it waiting for ever. Each order once: ib_async adds any
        openOrder that arrives meanwhile (an order's own report) to the answer."""
        async with self._open_orders_lock:
            request = self.ib.reqOpenOrdersAsync()
            trades = await asyncio.wait_for(request, self._request_timeout)
        return list({id(trade): trade for trade in trades}.values())

    def fills(self) -> list[Fill]:
        return list(self.ib.fills())

    async def executions(self, since: datetime | None) -> list[Fill]:
        """Executions IB reports since ``since`` (all of its day when None), with commissions."""
        spec = ExecutionFilter(clientId=self.client_id)
        if since is not None:
            spec.time = since.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
        return list(await asyncio.wait_for(self.ib.reqExecutionsAsync(spec), self._request_timeout))

    async def what_if(self, contract: Contract, order: Order) -> OrderState:
        """IB's margins for ``order`` were it placed (a what-if order: nothing is placed)."""
        answer = await asyncio.wait_for(
            self.ib.whatIfOrderAsync(contract, order), self._request_timeout
        )
        if not isinstance(answer, OrderState):  # an error ended the request instead
            raise ConnectionError(f"IB gave no what-if answer ({answer!r})")
        return answer

    async def current_time(self) -> datetime:
        """IB Gateway's clock (whole seconds): the cheapest request it must answer."""
        answer = await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), self._request_timeout)
        return answer if answer.tzinfo is not None else answer.replace(tzinfo=UTC)

    async def positions(self) -> list[Position]:
        return list(await asyncio.wait_for(self.ib.reqPositionsAsync(), self._request_timeout))
