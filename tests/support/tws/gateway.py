"""A TWS/IB Gateway stand-in on loopback that real, unmodified `ib_async` 2.1.0 talks to.

It speaks the classic text protocol at server version 176-178 (tws-protocol.md), lists MES
quarterlies, streams pushed 5-second bars, keeps history, runs a small matching engine for MKT,
LMT and STP orders (brackets, OCA), and keeps orders, positions and executions across client
disconnects and its own restarts. Faults are scriptable through `TwsGateway.faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from types import TracebackType
from typing import ClassVar, Literal, Self, get_args
from zoneinfo import ZoneInfo

from tests.support.tws import protocol as wire
from tests.support.tws.contracts import (
    ListedFuture,
    liquid_hours,
    mes_quarterlies,
    trading_hours,
)

FillSequence = Literal["exec_first", "status_first", "commission_first"]

ACTIVE_STATUSES = frozenset({"PendingSubmit", "PreSubmitted", "Submitted"})
BAR_SECONDS = 5
SHUT_WAIT_S = 10.0
"""Most wall time stop() waits for the listener to close."""
INITIAL_CASH = Decimal(100_000)
CHICAGO = ZoneInfo("America/Chicago")
RTH_OPEN, RTH_CLOSE = time(8, 30), time(15, 0)
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
NO_SECURITY = "No security definition has been found for the request"
DAY_PRESET = "Order TIF was set to DAY based on order preset."
CLIENT_ID_IN_USE = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)


@dataclass(frozen=True)
class GatewayBar:
    """A 5-second TRADES bar; `start` is the bar start, aware UTC and on a 5 s boundary."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int = 10

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(f"bar start {self.start!r} must be timezone-aware (UTC)")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        if self.start.timestamp() % BAR_SECONDS:
            raise ValueError(f"bar start {self.start} is not on a {BAR_SECONDS}-second boundary")
        for name in ("open", "high", "low", "close"):
            if not isinstance(getattr(self, name), Decimal):
                raise TypeError(f"bar {name} must be a Decimal, got {getattr(self, name)!r}")
        if not self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high:
            raise ValueError(
                f"bar at {self.start}: need low <= open, close <= high, got "
                f"O={self.open} H={self.high} L={self.low} C={self.close}"
            )
        if self.volume < 0:
            raise ValueError(f"bar at {self.start}: negative volume {self.volume}")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=BAR_SECONDS)


@dataclass
class GatewayOrder:
    """An order as the gateway holds it (mutable: status and fills change)."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    con_id: int
    action: str  # "BUY" or "SELL"
    quantity: int
    order_type: str  # "MKT", "LMT" or "STP"
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    outside_rth: bool
    oca_group: str
    oca_type: int
    parent_id: int
    transmit: bool
    order_ref: str
    status: str = "PendingSubmit"
    filled: int = 0
    avg_fill_price: Decimal = Decimal(0)
    last_fill_price: Decimal = Decimal(0)
    live: bool = False  # transmitted: its group went live
    active: bool = False  # working at the exchange: no parent, or the parent has filled
    held: bool = False  # a market order resting because faults.hold_fills was set

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def is_working(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class GatewayExecution:
    """One execution (fill) as IB reports it in execDetails and commissionReport."""

    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    con_id: int
    side: str  # "BOT" or "SLD"
    shares: int
    price: Decimal
    time: datetime
    commission: Decimal
    account: str
    cum_qty: int
    avg_price: Decimal
    realized_pnl: Decimal | None  # net of this fill's commission; None for an opening fill


@dataclass(frozen=True)
class RealtimeSubscription:
    req_id: int
    con_id: int
    client_id: int
    use_rth: bool = False


@dataclass(frozen=True)
class HistoricalSubscription:
    """A keepUpToDate historical request that receives historicalDataUpdate messages."""

    req_id: int
    con_id: int
    client_id: int
    bar_seconds: int
    format_date: int
    use_rth: bool


class GatewayFaults:
    """Scriptable misbehaviour; one-shot faults are consumed by the event they affect."""

    def __init__(self) -> None:
        self._fill_sequence: FillSequence = "exec_first"
        self.duplicate_statuses = 0
        self.hold_fills = False
        self.hold_order_reports = False
        """Work orders as usual, but keep what IB reports of them unasked (openOrder, orderStatus,
        executions, commissions) back from the clients until
        :meth:`TwsGateway.release_order_reports`; answers to requests (reqExecutions,
        reqOpenOrders) and errors still go at once. IB's answer to a cancel can overtake the
        reports of the fill that made the cancel fail."""
        self.hold_fill_reports = False
        """As ``hold_order_reports``, for the reports of fills only (the order is acknowledged)."""
        self._reject: tuple[int, str] | None = None
        self._partial: tuple[int, ...] | None = None
        self._client_id_in_use: dict[int, int] = {}
        self.unanswered: dict[int, Callable[[list[str]], bool]] = {}
        """Client message id -> which of those requests to leave unanswered (fields -> bool)."""
        self.day_preset = False
        """An order preset that makes every new GTC order DAY, with warning 10349 (on which
        ib_async 2.1 marks the live order Cancelled): a bracket's children then expire at the
        close. A modify keeps the TIF it asks for."""
        self.no_market_data: tuple[int, str] | None = None
        """Answer every real-time bar request with this (code, text): an account without the
        CME subscription (354, 10089...) or a competing live session (10197)."""
        self.no_historical_data: tuple[int, str] | None = None
        """Answer every historical-data request with this (code, text): on an account without
        the CME subscription IB's historical service says 162 "Historical Market Data Service
        error message:No market data permissions for CME FUT"."""
        self.refuse_changes: tuple[int, str] | None = None
        """Refuse every change to a working order with this (code, text); the order works on."""
        self.silent = False
        """Answer no request while the socket stays open (orders too): a Gateway that hangs, or
        is back from its restart waiting for a login. Bars already streaming still stream."""
        self.login_required = False
        """Back from a restart waiting for its login (the weekly one, with two-factor): every new
        connection is closed before the API handshake, as the socat relay of the IB Gateway
        Docker images does while the Gateway's own API port is not open yet. Connections made
        before it was set are not touched (:meth:`TwsGateway.restart` drops them)."""

    @property
    def fill_sequence(self) -> FillSequence:
        """Message order of one execution: see tws-protocol.md §6."""
        return self._fill_sequence

    @fill_sequence.setter
    def fill_sequence(self, value: FillSequence) -> None:
        if value not in get_args(FillSequence):
            raise ValueError(f"fill_sequence {value!r} is not one of {get_args(FillSequence)}")
        self._fill_sequence = value

    def reject_next(self, code: int = 201, text: str = "Order rejected - reason: test") -> None:
        """Reject the next transmitted order (a bracket: its parent; its children are cancelled)."""
        self._reject = (code, text)

    def partial_fill_next(self, *chunks: int) -> None:
        """Split the next market fill into executions of these sizes (the rest comes last)."""
        if not chunks or any(not isinstance(c, int) or c <= 0 for c in chunks):
            raise ValueError(f"partial fill chunks must be positive integers, got {chunks}")
        self._partial = chunks

    def client_id_in_use(self, client_id: int, times: int = 1) -> None:
        """Answer the next `times` connections of `client_id` with error 326, then close."""
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        self._client_id_in_use[client_id] = times

    def take_reject(self) -> tuple[int, str] | None:
        reject, self._reject = self._reject, None
        return reject

    def take_partial(self) -> tuple[int, ...] | None:
        partial, self._partial = self._partial, None
        return partial

    def take_client_id_in_use(self, client_id: int) -> bool:
        left = self._client_id_in_use.get(client_id, 0)
        if left <= 0:
            return False
        self._client_id_in_use[client_id] = left - 1
        return True


@dataclass
class _Book:
    """Net position and average price of one (account, conId)."""

    quantity: int = 0
    avg_price: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)

    def apply(self, signed: int, price: Decimal, multiplier: Decimal) -> Decimal | None:
        """Book a fill; return the gross P&L it realised, or None when it only opened."""
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            total = self.quantity + signed
            self.avg_price = (self.avg_price * self.quantity + price * signed) / total
            self.quantity = total
            return None
        closed = min(abs(signed), abs(self.quantity))
        direction = 1 if self.quantity > 0 else -1
        pnl = (price - self.avg_price) * closed * direction * multiplier
        self.realized += pnl
        self.quantity += signed
        if self.quantity == 0:
            self.avg_price = Decimal(0)
        elif (self.quantity > 0) != (direction > 0):
            self.avg_price = price
        return pnl


class _Session:
    """One client socket."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        record: Callable[[int | None, wire.Message], None],
    ) -> None:
        self.writer = writer
        self._record = record
        self.server_version = 0
        self.client_id: int | None = None
        self.ready = False
        self.positions = False
        self.account_updates: str | None = None
        self.closing = False
        self.closed = False

    def send(self, fields: wire.Message) -> None:
        if not self.closed and not self.writer.is_closing():
            self._record(self.client_id, fields)
            self.writer.write(wire.encode_frame(fields))

    async def drain(self) -> None:
        if self.closed or self.writer.is_closing():
            return
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


_DURATION = re.compile(r"^(\d+) ([SDW])$")
_BAR_SIZE = re.compile(r"^(\d+) (secs?|mins?|hours?)$")
_UNIT_SECONDS = {"S": 1, "D": 86_400, "W": 604_800, "sec": 1, "min": 60, "hour": 3600}


def _bar_seconds(text: str) -> int:
    match = _BAR_SIZE.match(text.strip())
    if match is None:
        raise wire.ProtocolError(f"bar size {text!r} is not 'N secs|min|mins|hour|hours'")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]
    if seconds <= 0 or seconds % BAR_SECONDS:
        raise wire.ProtocolError(f"bar size {text!r} is not a multiple of {BAR_SECONDS} seconds")
    return seconds


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None:
        raise wire.ProtocolError(f"duration {text!r} is not 'N S', 'N D' or 'N W'")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _in_rth(moment: datetime) -> bool:
    local = moment.astimezone(CHICAGO)
    return local.weekday() < 5 and RTH_OPEN <= local.time() < RTH_CLOSE


def _aggregate(bars: Iterable[GatewayBar], seconds: int) -> list[tuple[datetime, wire.BarFields]]:
    """Clock-aligned buckets of `seconds` built from 5-second bars (sorted by start)."""
    buckets: dict[int, list[GatewayBar]] = {}
    for bar in bars:
        epoch = int(bar.start.timestamp())
        buckets.setdefault(epoch - epoch % seconds, []).append(bar)
    result: list[tuple[datetime, wire.BarFields]] = []
    for epoch, group in sorted(buckets.items()):
        volume = sum(b.volume for b in group)
        wap = (
            sum((b.close * b.volume for b in group), Decimal(0)) / volume
            if volume
            else group[-1].close
        ).quantize(Decimal("0.000001"))
        fields = wire.BarFields(
            open=group[0].open,
            high=max(b.high for b in group),
            low=min(b.low for b in group),
            close=group[-1].close,
            volume=volume,
            wap=wap.normalize(),
            count=len(group),
        )
        result.append((datetime.fromtimestamp(epoch, UTC), fields))
    return result


def _describe(predicate: Callable[[], bool]) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


class TwsGateway:
    """The test gateway: one asyncio server on 127.0.0.1 plus the broker and market state."""

    def __init__(
        self,
        *,
        server_version: int = 178,
        accounts: Sequence[str] = ("DU1234567",),
        contracts: Sequence[ListedFuture] | None = None,
        now: Callable[[], datetime] | None = None,
        commission: Decimal = Decimal("0.62"),
        first_order_id: int = 1,
        record_traffic: bool = True,
        history_window: timedelta | None = None,
    ) -> None:
        """``record_traffic`` False keeps no copy of the messages in ``sent`` and ``received``, and
        ``history_window`` keeps only the bars that start within that span of the newest pushed
        one: together they bound the gateway's memory over a long (soak) run."""
        if not wire.MIN_SERVER_VERSION <= server_version <= wire.MAX_SERVER_VERSION:
            raise ValueError(
                f"server_version {server_version} is outside the supported "
                f"{wire.MIN_SERVER_VERSION}..{wire.MAX_SERVER_VERSION}"
            )
        if not accounts or any(not a or "," in a for a in accounts):
            raise ValueError(f"accounts must be non-empty names without commas, got {accounts!r}")
        if first_order_id < 1:
            raise ValueError(f"first_order_id must be positive, got {first_order_id}")
        if history_window is not None and history_window <= timedelta(0):
            raise ValueError(f"history_window must be positive (or None), got {history_window}")
        self.record_traffic = record_traffic
        self.history_window = history_window
        self.server_version = server_version
        self.accounts = tuple(accounts)
        self._clock = now
        self.commission = commission
        self._last_bar_end: datetime | None = None
        today = self._now().date()
        self.contracts = tuple(mes_quarterlies(today) if contracts is None else contracts)
        self._by_con_id = {c.con_id: c for c in self.contracts}
        self.faults = GatewayFaults()
        # broker and market state: survives disconnects and restarts
        self.orders: list[GatewayOrder] = []
        self.executions: list[GatewayExecution] = []
        self._held_reports: list[tuple[_Session, wire.Message]] = []
        self.received: list[tuple[int, list[str]]] = []
        # every message written to a client after the handshake reply: (clientId, fields)
        self.sent: list[tuple[int | None, list[str]]] = []
        self.refused_handshakes = 0
        self.refused_logins = 0
        """Connections closed because the Gateway waited for its login (``faults.login_required``)."""
        self.ignored_while_silent: list[tuple[datetime, int]] = []
        """``(when, message id)`` of each request ``faults.silent`` left unanswered (3:
        placeOrder, 49: reqCurrentTime): what clients sent to a Gateway that answered nothing."""
        self._books: dict[tuple[str, int], _Book] = {}
        self.margin_per_contract = Decimal("1650.00")
        """Initial margin per contract in what-if answers (maintenance: 90 % of it)."""
        self.equity_with_loan = Decimal("25000.00")
        """The account's equity with loan value in what-if answers."""
        self._commissions: dict[str, Decimal] = {}
        self._history: dict[int, dict[datetime, GatewayBar]] = {}
        self._last_close: dict[int, Decimal] = {}
        self._perm_seq = 0
        self._exec_seq = 0
        self._max_order_id = first_order_id - 1
        # connection state
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._realtime: list[tuple[_Session, RealtimeSubscription]] = []
        self._keep_up: list[tuple[_Session, HistoricalSubscription]] = []
        self._failures: list[BaseException] = []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port the first time, the same port afterwards)."""
        if self._server is not None:
            raise RuntimeError("the gateway is already listening")
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port or 0)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every client; raises if a session handler failed."""
        await self._shut()
        if self._failures:
            first = self._failures[0]
            raise AssertionError(f"the TWS test gateway failed: {first!r}") from first

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.stop()
        else:
            await self._shut()

    async def _shut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self.disconnect_clients()
        if server is not None:
            try:
                # Bounded: a client that connects while the listener closes would hold it open.
                await asyncio.wait_for(server.wait_closed(), SHUT_WAIT_S)
            except TimeoutError:
                await self.disconnect_clients()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the gateway has not been started")
        return self._port

    @property
    def listening(self) -> bool:
        """Whether the listener is up (False while `restart` is in its downtime)."""
        return self._server is not None

    @property
    def connections(self) -> int:
        """Client sockets open now."""
        return len(self._sessions)

    @property
    def realtime_subscriptions(self) -> list[RealtimeSubscription]:
        return [sub for _, sub in self._realtime]

    @property
    def historical_subscriptions(self) -> list[HistoricalSubscription]:
        return [sub for _, sub in self._keep_up]

    async def disconnect_clients(self) -> None:
        """Close every client socket; orders, positions and executions are kept."""
        for session in list(self._sessions):
            self._forget(session)
            session.close()
        await asyncio.sleep(0)

    async def restart(self, downtime: float = 0.0, *, login_required: bool = False) -> None:
        """Drop clients and the listener, keep all state, and listen again on the same port;
        with ``login_required``, come back waiting for a login (``faults.login_required``) until
        :meth:`log_in`."""
        await self._shut()
        self.faults.login_required = login_required
        await asyncio.sleep(downtime)
        await self.start()

    def log_in(self) -> None:
        """The operator logged in (and approved the two-factor prompt): the API port opens."""
        self.faults.login_required = False

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, *, what: str | None = None
    ) -> None:
        """Poll the event loop until `predicate()` is true, else fail with a clear message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if self._failures:
                raise AssertionError(f"the TWS test gateway failed: {self._failures[0]!r}")
            if loop.time() >= deadline:
                raise AssertionError(
                    f"still false after {timeout} s: {what or _describe(predicate)}"
                )
            await asyncio.sleep(0.002)

    # ------------------------------------------------------------ queries

    def order_by_ref(self, order_ref: str) -> GatewayOrder | None:
        """The earliest placed order with this orderRef."""
        return next((o for o in self.orders if o.order_ref == order_ref), None)

    def orders_by_ref(self, order_ref: str) -> list[GatewayOrder]:
        return [o for o in self.orders if o.order_ref == order_ref]

    def position(self, con_id: int) -> int:
        """Signed net position in `con_id` over all accounts."""
        return sum(b.quantity for (_, cid), b in self._books.items() if cid == con_id)

    def last_close(self, con_id: int) -> Decimal | None:
        return self._last_close.get(con_id)

    def history(self, con_id: int) -> list[GatewayBar]:
        return sorted(self._history.get(con_id, {}).values(), key=lambda b: b.start)

    def now(self) -> datetime:
        return self._now()

    def _now(self) -> datetime:
        if self._clock is not None:
            moment = self._clock()
            if moment.tzinfo is None:
                raise ValueError(f"the injected clock returned a naive datetime {moment!r}")
            return moment.astimezone(UTC)
        if self._last_bar_end is not None:
            return self._last_bar_end
        return datetime.now(UTC)

    # ------------------------------------------------------------ market

    def add_history(self, con_id: int, bars: Sequence[GatewayBar]) -> None:
        """Bars that exist at IB but were never streamed (for gap-backfill tests)."""
        self._future(con_id)
        store = self._history.setdefault(con_id, {})
        for bar in bars:
            store[bar.start] = bar

    async def push_bar(self, con_id: int, bar: GatewayBar) -> None:
        """Store `bar`, stream it to live subscriptions, then match resting orders against it."""
        future = self._future(con_id)
        history = self._history.setdefault(con_id, {})
        history[bar.start] = bar
        if self.history_window is not None:
            self._forget_history(history, bar.start - self.history_window)
        self._last_close[con_id] = bar.close
        self._last_bar_end = bar.end
        self._stream(con_id, bar)
        resting = [
            o
            for o in self.orders
            if o.con_id == con_id and o.active and o.is_working and o.order_type in ("STP", "LMT")
        ]
        # Stops before limits: when one bar reaches both legs of a bracket, assume the worse.
        resting.sort(key=lambda o: o.order_type != "STP")
        for order in resting:
            if order.is_working:
                price = self._trigger_price(order, bar)
                if price is not None:
                    self._fill(order, price, None, future)
        await self._drain_all()

    @staticmethod
    def _forget_history(history: dict[datetime, GatewayBar], before: datetime) -> None:
        """Drop bars starting before ``before``. Pushes come in time order, so the oldest bars are
        first in the dict; bars that ``add_history`` inserted out of that order go once they are."""
        while history:
            oldest = next(iter(history))
            if oldest >= before:
                return
            del history[oldest]

    def _stream(self, con_id: int, bar: GatewayBar) -> None:
        fields = wire.BarFields(
            bar.open, bar.high, bar.low, bar.close, bar.volume, bar.close, bar.volume
        )
        epoch = int(bar.start.timestamp())
        for session, sub in self._realtime:
            if sub.con_id == con_id and (not sub.use_rth or _in_rth(bar.start)):
                session.send(wire.realtime_bar(sub.req_id, epoch, fields))
        for session, hist in self._keep_up:
            if hist.con_id != con_id or (hist.use_rth and not _in_rth(bar.start)):
                continue
            bucket_epoch = epoch - epoch % hist.bar_seconds
            bucket = datetime.fromtimestamp(bucket_epoch, UTC)
            members = [
                b
                for b in self.history(con_id)
                if bucket <= b.start < bucket + timedelta(seconds=hist.bar_seconds)
                and (not hist.use_rth or _in_rth(b.start))
            ]
            ((start, agg),) = _aggregate(members, hist.bar_seconds)
            session.send(
                wire.historical_data_update(
                    hist.req_id, self._bar_date(start, hist.format_date), agg
                )
            )

    @staticmethod
    def _trigger_price(order: GatewayOrder, bar: GatewayBar) -> Decimal | None:
        if order.order_type == "STP":
            assert order.aux_price is not None
            stop = order.aux_price
            if order.action == "SELL" and bar.low <= stop:
                return min(bar.open, stop)  # a bar opening through the stop fills at its open
            if order.action == "BUY" and bar.high >= stop:
                return max(bar.open, stop)
            return None
        assert order.lmt_price is not None
        limit = order.lmt_price
        if order.action == "SELL" and bar.high >= limit:
            return limit
        if order.action == "BUY" and bar.low <= limit:
            return limit
        return None

    # ------------------------------------------------------------ scripted broker events

    async def fill_held(self, order_ref: str, price: Decimal | None = None) -> None:
        """Fill a market order held by `faults.hold_fills`, connected client or not."""
        order = next(
            (o for o in self.orders if o.order_ref == order_ref and o.held and o.is_working), None
        )
        if order is None:
            raise ValueError(f"no held working market order with orderRef {order_ref!r}")
        fill_price = price if price is not None else self._last_close.get(order.con_id)
        if fill_price is None:
            raise ValueError(f"no price given and no bar pushed yet for conId {order.con_id}")
        order.held = False
        self._fill(order, fill_price, self.faults.take_partial(), self._future(order.con_id))
        await self._drain_all()

    async def release_order_reports(self) -> int:
        """Send the reports held back by ``faults.hold_order_reports`` or ``hold_fill_reports``;
        returns how many."""
        held, self._held_reports = self._held_reports, []
        for session, message in held:
            session.send(message)
        await self._drain_all()
        return len(held)

    async def cancel_by_broker(
        self, order_ref: str, code: int = 202, text: str = "Order Canceled - reason:"
    ) -> None:
        """Cancel a working order as IB would (orderStatus Cancelled, then error `code`)."""
        order = next((o for o in self.orders if o.order_ref == order_ref and o.is_working), None)
        if order is None:
            raise ValueError(f"no working order with orderRef {order_ref!r}")
        self._cancel(order, code, text)
        await self._drain_all()

    async def send_error(self, code: int, text: str = "", req_id: int = -1) -> None:
        """Send an error/notice (1100, 1101, 1102, 2103, 10225, ...) to every connected client."""
        for session in self._ready_sessions():
            session.send(wire.error(req_id, code, text))
        await self._drain_all()

    def drop_realtime_subscriptions(self) -> None:
        """Like IB after 1101: subscriptions stop streaming until the client resubscribes."""
        self._realtime.clear()
        self._keep_up.clear()

    # ------------------------------------------------------------ connection handling

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = _Session(writer, self._record_sent)
        self._sessions.add(session)
        try:
            await self._run(session, reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except Exception as exc:  # surfaced by stop() and wait_for()
            self._failures.append(exc)
        finally:
            self._forget(session)
            session.close()
            self._tasks.discard(task)

    async def _run(self, session: _Session, reader: asyncio.StreamReader) -> None:
        if self.faults.login_required:
            self.refused_logins += 1
            return  # closed before a byte of the handshake is answered
        if await reader.readexactly(len(wire.HANDSHAKE_PREFIX)) != wire.HANDSHAKE_PREFIX:
            return
        try:
            low, high = wire.parse_version_range(await wire.read_payload(reader))
        except wire.ProtocolError:
            self.refused_handshakes += 1
            return
        if not low <= self.server_version <= high:
            self.refused_handshakes += 1
            return
        session.server_version = self.server_version
        session.writer.write(
            wire.encode_frame(wire.handshake_reply(self.server_version, self._now()))
        )
        await session.drain()
        while not session.closed:
            fields = wire.split_payload(await wire.read_payload(reader))
            if not fields:
                continue
            try:
                msg_id = int(fields[0])
            except ValueError:
                session.send(
                    wire.error(-1, 320, f"Error reading request: message id {fields[0]!r}")
                )
                continue
            if self.record_traffic:
                self.received.append((msg_id, fields))
            try:
                self._dispatch(session, msg_id, fields)
            except wire.ProtocolError as exc:
                session.send(wire.error(-1, 321, f"Error validating request: {exc}"))
            await self._drain_all()
            if session.closing:
                return

    def _record_sent(self, client_id: int | None, fields: wire.Message) -> None:
        if self.record_traffic:
            self.sent.append((client_id, fields))

    def _forget(self, session: _Session) -> None:
        self._sessions.discard(session)
        self._realtime = [(s, sub) for s, sub in self._realtime if s is not session]
        self._keep_up = [(s, sub) for s, sub in self._keep_up if s is not session]

    def _ready_sessions(self) -> list[_Session]:
        return [s for s in self._sessions if s.ready and not s.closed]

    def _client_sessions(self, client_id: int) -> list[_Session]:
        return [s for s in self._ready_sessions() if s.client_id == client_id]

    async def _drain_all(self) -> None:
        for session in list(self._sessions):
            await session.drain()

    def _dispatch(self, session: _Session, msg_id: int, fields: list[str]) -> None:
        if msg_id == 71:
            self._start_api(session, fields)
            return
        if not session.ready:
            return  # TWS ignores requests before startApi
        if self.faults.silent:
            self.ignored_while_silent.append((self._now(), msg_id))
            return
        ignore = self.faults.unanswered.get(msg_id)
        if ignore is not None and ignore(fields):
            return  # a request IB never answers (reqExecutions at a bad moment, say)
        handler = self._handlers.get(msg_id)
        if handler is not None:
            handler(self, session, fields)

    def _start_api(self, session: _Session, fields: list[str]) -> None:
        client_id = wire.parse_start_api(fields)
        taken = any(s.client_id == client_id for s in self._ready_sessions() if s is not session)
        if self.faults.take_client_id_in_use(client_id) or taken:
            session.send(wire.error(-1, 326, CLIENT_ID_IN_USE))
            session.closing = True
            return
        session.client_id = client_id
        session.ready = True
        session.send(wire.next_valid_id(self._next_order_id()))
        session.send(wire.managed_accounts(self.accounts))
        for code, text in FARM_NOTICES:
            session.send(wire.error(-1, code, text))

    def _next_order_id(self) -> int:
        return self._max_order_id + 1

    # ------------------------------------------------------------ request handlers

    def _req_positions(self, session: _Session, fields: list[str]) -> None:
        session.positions = True
        for (account, con_id), book in sorted(self._books.items()):
            if book.quantity:
                session.send(self._position_message(account, con_id))
        session.send(wire.position_end())

    def _cancel_positions(self, session: _Session, fields: list[str]) -> None:
        session.positions = False

    def _req_open_orders(self, session: _Session, fields: list[str]) -> None:
        self._report_open_orders(session, all_clients=False)

    def _req_all_open_orders(self, session: _Session, fields: list[str]) -> None:
        self._report_open_orders(session, all_clients=True)

    def _report_open_orders(self, session: _Session, *, all_clients: bool) -> None:
        for order in self.orders:
            if (
                order.live
                and order.is_working
                and (all_clients or order.client_id == session.client_id)
            ):
                session.send(self._open_order_message(session, order))
                session.send(self._status_message(order))
        session.send(wire.open_order_end())

    def _req_completed_orders(self, session: _Session, fields: list[str]) -> None:
        session.send(wire.completed_orders_end())

    def _req_account_updates(self, session: _Session, fields: list[str]) -> None:
        if len(fields) < 4:
            raise wire.ProtocolError(f"reqAccountUpdates has {len(fields)} fields, 4 expected")
        if fields[2] != "1":
            session.account_updates = None
            return
        account = fields[3] or self.accounts[0]
        self._check_account(account)
        session.account_updates = account
        self._send_account(session, account)
        session.send(wire.update_account_time(self._now().strftime("%H:%M")))
        session.send(wire.account_download_end(account))

    def _req_account_updates_multi(self, session: _Session, fields: list[str]) -> None:
        req_id = wire.parse_req_id(fields, "reqAccountUpdatesMulti")
        requested = fields[3] if len(fields) > 3 else ""
        accounts = self.accounts if requested in ("", "All") else (requested,)
        model = fields[4] if len(fields) > 4 else ""
        for account in accounts:
            self._check_account(account)
            for key, value, currency in self._account_values(account):
                session.send(
                    wire.account_update_multi(req_id, account, model, key, value, currency)
                )
        session.send(wire.account_update_multi_end(req_id))

    def _req_account_summary(self, session: _Session, fields: list[str]) -> None:
        request = wire.parse_account_summary_request(fields)
        for account in self.accounts:
            values = {key: (value, cur) for key, value, cur in self._account_values(account)}
            values["AccountType"] = ("INDIVIDUAL", "")
            for tag in request.tags:
                if tag in values:
                    value, currency = values[tag]
                    session.send(
                        wire.account_summary(request.req_id, account, tag, value, currency)
                    )
        session.send(wire.account_summary_end(request.req_id))

    def _req_executions(self, session: _Session, fields: list[str]) -> None:
        request = wire.parse_executions_request(fields)
        since = wire.parse_ib_datetime(request.time) if request.time.strip() else None
        sides = {"BUY": "BOT", "SELL": "SLD", "BOT": "BOT", "SLD": "SLD"}
        for execution in self.executions:
            future = self._by_con_id[execution.con_id]
            if (
                (request.client_id and execution.client_id != request.client_id)
                or (request.account and execution.account != request.account)
                or (since is not None and execution.time < since)
                or (request.symbol and future.symbol != request.symbol)
                or (request.sec_type and future.sec_type != request.sec_type)
                or (request.exchange and future.exchange != request.exchange)
                or (request.side and sides.get(request.side.upper()) != execution.side)
            ):
                continue
            session.send(
                wire.exec_details(session.server_version, request.req_id, execution, future)
            )
            session.send(self._commission_message(execution))
        session.send(wire.exec_details_end(request.req_id))

    def _req_ids(self, session: _Session, fields: list[str]) -> None:
        session.send(wire.next_valid_id(self._next_order_id()))

    def _req_current_time(self, session: _Session, fields: list[str]) -> None:
        session.send(wire.current_time(int(self._now().timestamp())))

    def _req_contract_details(self, session: _Session, fields: list[str]) -> None:
        request = wire.parse_contract_details_request(fields)
        matches = self._resolve(request.contract)
        if not matches:
            session.send(wire.error(request.req_id, 200, NO_SECURITY))
            return
        today = self._now().date()
        hours, liquid = trading_hours(today), liquid_hours(today)
        for future, sec_type in matches:
            session.send(
                wire.contract_details(
                    request.req_id,
                    future,
                    trading_hours=hours,
                    liquid_hours=liquid,
                    sec_type=sec_type,
                )
            )
        session.send(wire.contract_details_end(request.req_id))

    def _req_real_time_bars(self, session: _Session, fields: list[str]) -> None:
        request = wire.parse_real_time_bars_request(fields)
        future = self._resolve_one(request.contract)
        if future is None:
            session.send(wire.error(request.req_id, 200, NO_SECURITY))
            return
        if request.bar_size != BAR_SECONDS:
            session.send(
                wire.error(
                    request.req_id,
                    321,
                    f"Error validating request: real-time bars are 5 seconds, not {request.bar_size}",
                )
            )
            return
        if self.faults.no_market_data is not None:
            session.send(wire.error(request.req_id, *self.faults.no_market_data))
            return
        if request.what_to_show != "TRADES":
            session.send(
                wire.error(
                    request.req_id,
                    321,
                    f"Error validating request: the test gateway streams TRADES only, "
                    f"not {request.what_to_show!r}",
                )
            )
            return
        assert session.client_id is not None
        sub = RealtimeSubscription(
            request.req_id, future.con_id, session.client_id, request.use_rth
        )
        self._realtime.append((session, sub))

    def _cancel_real_time_bars(self, session: _Session, fields: list[str]) -> None:
        req_id = wire.parse_req_id(fields, "cancelRealTimeBars")
        self._realtime = [
            (s, sub) for s, sub in self._realtime if not (s is session and sub.req_id == req_id)
        ]

    def _req_historical_data(self, session: _Session, fields: list[str]) -> None:
        request = wire.parse_historical_data_request(fields)
        req_id = request.req_id
        future = self._resolve_one(request.contract)
        if future is None:
            session.send(wire.error(req_id, 200, NO_SECURITY))
            return
        if self.faults.no_historical_data is not None:
            session.send(wire.error(req_id, *self.faults.no_historical_data))
            return
        try:
            seconds = _bar_seconds(request.bar_size)
            span = _duration(request.duration)
            if request.what_to_show != "TRADES":
                raise wire.ProtocolError(f"whatToShow {request.what_to_show!r} (TRADES only)")
            if request.format_date not in (1, 2):
                raise wire.ProtocolError(f"formatDate {request.format_date} (1 or 2 only)")
            if request.keep_up_to_date and request.end_date_time:
                raise wire.ProtocolError("endDateTime must be empty with keepUpToDate")
            end = (
                wire.parse_ib_datetime(request.end_date_time)
                if request.end_date_time
                else self._now()
            )
        except wire.ProtocolError as exc:
            session.send(wire.error(req_id, 321, f"Error validating request: {exc}"))
            return
        start = end - span
        members = [
            b
            for b in self.history(future.con_id)
            if start <= b.start < end and (not request.use_rth or _in_rth(b.start))
        ]
        if not members:
            session.send(
                wire.error(
                    req_id,
                    162,
                    "Historical Market Data Service error message:HMDS query returned no data: "
                    f"{future.local_symbol}@{future.exchange} Trades",
                )
            )
            return
        bars = [
            (self._bar_date(moment, request.format_date), agg)
            for moment, agg in _aggregate(members, seconds)
        ]
        session.send(
            wire.historical_data(
                req_id, start.strftime("%Y%m%d-%H:%M:%S"), end.strftime("%Y%m%d-%H:%M:%S"), bars
            )
        )
        if request.keep_up_to_date:
            assert session.client_id is not None
            hist = HistoricalSubscription(
                req_id,
                future.con_id,
                session.client_id,
                seconds,
                request.format_date,
                request.use_rth,
            )
            self._keep_up.append((session, hist))

    @staticmethod
    def _bar_date(moment: datetime, format_date: int) -> str:
        if format_date == 2:
            return str(int(moment.timestamp()))
        return moment.strftime("%Y%m%d %H:%M:%S UTC")

    def _cancel_historical_data(self, session: _Session, fields: list[str]) -> None:
        req_id = wire.parse_req_id(fields, "cancelHistoricalData")
        self._keep_up = [
            (s, sub) for s, sub in self._keep_up if not (s is session and sub.req_id == req_id)
        ]

    # ------------------------------------------------------------ contracts

    def _future(self, con_id: int) -> ListedFuture:
        future = self._by_con_id.get(con_id)
        if future is None:
            listed = ", ".join(f"{c.local_symbol}={c.con_id}" for c in self.contracts)
            raise ValueError(f"conId {con_id} is not listed by this gateway ({listed})")
        return future

    def _resolve(self, spec: wire.ContractSpec) -> list[tuple[ListedFuture, str]]:
        """Listed contracts matching a request, with the secType to report them under."""
        if spec.con_id:
            future = self._by_con_id.get(spec.con_id)
            return [] if future is None else [(future, future.sec_type)]
        if spec.sec_type not in ("", "FUT", "CONTFUT"):
            return []
        if not spec.symbol and not spec.local_symbol:
            return []
        wanted = spec.last_trade_date_or_contract_month.split(" ")[0].split("-")[0]
        matches = [
            c
            for c in self.contracts
            if spec.exchange in ("", c.exchange)
            and spec.symbol in ("", c.symbol)
            and spec.local_symbol in ("", c.local_symbol)
            and spec.trading_class in ("", c.trading_class)
            and spec.multiplier in ("", c.multiplier)
            and spec.currency in ("", c.currency)
            and spec.right in ("", "0", "?")
            and (
                not wanted
                or (len(wanted) == 6 and c.contract_month == wanted)
                or (len(wanted) == 8 and c.last_trade_date_ib == wanted)
            )
        ]
        if spec.sec_type == "CONTFUT":
            # IB: one detail, the front contract's conId, reported as CONTFUT.
            return [(matches[0], "CONTFUT")] if matches and not wanted else []
        return [(c, c.sec_type) for c in matches]

    def _resolve_one(self, spec: wire.ContractSpec) -> ListedFuture | None:
        matches = self._resolve(spec)
        if len(matches) != 1 or matches[0][1] != "FUT":
            return None
        return matches[0][0]

    # ------------------------------------------------------------ orders

    def _order(self, client_id: int, order_id: int) -> GatewayOrder | None:
        return next(
            (o for o in self.orders if o.client_id == client_id and o.order_id == order_id), None
        )

    def _children(self, parent: GatewayOrder) -> list[GatewayOrder]:
        return [
            o
            for o in self.orders
            if o.client_id == parent.client_id and o.parent_id == parent.order_id
        ]

    def _check_account(self, account: str) -> None:
        if account not in self.accounts:
            raise wire.ProtocolError(f"account {account!r} is not one of {list(self.accounts)}")

    def _invalid_order(self, session: _Session, order_id: int, code: int, text: str) -> None:
        session.send(wire.error(order_id, code, text))

    def _place_order(self, session: _Session, fields: list[str]) -> None:
        request = wire.parse_place_order(fields, session.server_version)
        assert session.client_id is not None
        order_id = request.order_id
        existing = self._order(session.client_id, order_id)
        future = self._resolve_one(request.contract)
        if future is None:
            self._invalid_order(session, order_id, 200, NO_SECURITY)
            return
        problem = self._order_problem(request, future)
        if problem is not None:
            self._invalid_order(session, order_id, *problem)
            return
        if request.what_if:
            self._what_if(session, request, future)
            return
        if existing is not None:
            self._modify(session, existing, request)
            return
        parent = None
        if request.parent_id:
            parent = self._order(session.client_id, request.parent_id)
            if parent is None or (not parent.is_working and parent.status != "Filled"):
                self._invalid_order(
                    session, order_id, 135, f"Can't find order with id ={request.parent_id}"
                )
                return
        self._perm_seq += 1
        order = self._new_order(request, future, session.client_id, 1_000_000_000 + self._perm_seq)
        preset = self.faults.day_preset and order.tif == "GTC"
        if preset:
            order.tif = "DAY"
        self.orders.append(order)
        self._max_order_id = max(self._max_order_id, order_id)
        if order.transmit:
            self._transmit(order)
        if preset:
            session.send(wire.error(order_id, 10349, DAY_PRESET))

    def _new_order(
        self, request: wire.PlaceOrder, future: ListedFuture, client_id: int, perm_id: int
    ) -> GatewayOrder:
        return GatewayOrder(
            order_id=request.order_id,
            client_id=client_id,
            perm_id=perm_id,
            account=request.account or self.accounts[0],
            con_id=future.con_id,
            action=request.action,
            quantity=int(request.quantity),
            order_type=request.order_type,
            lmt_price=request.lmt_price,
            aux_price=request.aux_price,
            tif=request.tif or "DAY",
            outside_rth=request.outside_rth,
            oca_group=request.oca_group,
            oca_type=request.oca_type,
            parent_id=request.parent_id,
            transmit=request.transmit,
            order_ref=request.order_ref,
        )

    def _what_if(self, session: _Session, request: wire.PlaceOrder, future: ListedFuture) -> None:
        """A what-if order is never placed: IB answers with the margins it would need."""
        held = abs(self.position(future.con_id))
        qty = int(request.quantity)
        per = self.margin_per_contract
        order = self._new_order(request, future, session.client_id or 0, perm_id=0)
        answer = wire.WhatIf(
            init_before=per * held,
            maint_before=per * held * Decimal("0.9"),
            equity_before=self.equity_with_loan,
            init_after=per * (held + qty),
            maint_after=per * (held + qty) * Decimal("0.9"),
            equity_after=self.equity_with_loan,
            commission=self.commission * qty,
        )
        session.send(wire.open_order(session.server_version, order, future, "PreSubmitted", answer))

    def _order_problem(
        self, request: wire.PlaceOrder, future: ListedFuture
    ) -> tuple[int, str] | None:
        if request.action not in ("BUY", "SELL"):
            return 321, f"Error validating request: action {request.action!r} (BUY or SELL)"
        if request.quantity <= 0 or request.quantity != request.quantity.to_integral_value():
            return 321, f"Error validating request: quantity {request.quantity} (whole, > 0)"
        if request.order_type not in ("MKT", "LMT", "STP"):
            return 321, f"Error validating request: order type {request.order_type!r} unsupported"
        if request.account and request.account not in self.accounts:
            return 321, f"Error validating request: account {request.account!r} unknown"
        needed = {"LMT": request.lmt_price, "STP": request.aux_price}.get(request.order_type)
        if request.order_type != "MKT" and needed is None:
            return 321, f"Error validating request: {request.order_type} order without its price"
        tick = Decimal(repr(future.min_tick))
        for price in (needed,):
            if price is not None and price % tick:
                return 110, (
                    "The price does not conform to the minimum price variation for this "
                    f"contract: {price} is not a multiple of {tick}"
                )
        return None

    def _modify(self, session: _Session, order: GatewayOrder, request: wire.PlaceOrder) -> None:
        refused = self.faults.refuse_changes
        if refused is not None and order.is_working:
            self._invalid_order(session, order.order_id, *refused)
            return
        if not order.is_working:
            self._invalid_order(
                session, order.order_id, 104, f"Cannot modify an order that is {order.status}."
            )
            return
        if int(request.quantity) < order.filled:
            self._invalid_order(
                session, order.order_id, 321, "Error validating request: quantity below filled"
            )
            return
        order.quantity = int(request.quantity)
        order.lmt_price = request.lmt_price
        order.aux_price = request.aux_price
        order.tif = request.tif or order.tif
        order.outside_rth = request.outside_rth
        order.oca_group = request.oca_group
        order.oca_type = request.oca_type
        if not order.live:
            order.transmit = request.transmit
            if order.transmit:
                self._transmit(order)
            return
        self._announce(order, order.status)

    def _transmit(self, order: GatewayOrder) -> None:
        """Send `order` and every untransmitted member of its bracket live, root first."""
        root = order if not order.parent_id else self._order(order.client_id, order.parent_id)
        assert root is not None
        group = [root, *self._children(root)]
        pending = [o for o in group if not o.live and o.status == "PendingSubmit"]
        reject = self.faults.take_reject()
        if reject is not None:
            first, *rest = pending
            self._reject(first, *reject)
            for other in rest:
                if other.is_working:
                    self._cancel(other, None, "")
            return
        for member in pending:
            member.live = True
            parent = self._order(member.client_id, member.parent_id) if member.parent_id else None
            member.active = parent is None or parent.status == "Filled"
            member.status = (
                "Submitted" if member.active and member.order_type != "MKT" else "PreSubmitted"
            )
            self._announce(member, member.status)
        for member in pending:
            if member.active and member.order_type == "MKT" and member.is_working:
                self._start_market(member)

    def _start_market(self, order: GatewayOrder) -> None:
        future = self._future(order.con_id)
        if self.faults.hold_fills:
            order.held = True
            order.status = "Submitted"
            self._announce(order, order.status)
            return
        price = self._last_close.get(order.con_id)
        if price is None:
            self._reject(
                order,
                201,
                f"Order rejected - reason: no market price for {future.local_symbol} yet",
            )
            return
        self._fill(order, price, self.faults.take_partial(), future)

    def _reject(self, order: GatewayOrder, code: int, text: str) -> None:
        order.status = "Cancelled"
        for session in self._client_sessions(order.client_id):
            session.send(wire.error(order.order_id, code, text))
        self._send_status(order)
        for child in self._children(order):
            if child.is_working:
                self._cancel(child, None, "")

    def _cancel(self, order: GatewayOrder, code: int | None, text: str) -> None:
        """orderStatus Cancelled, then error `code` if given; unfilled parents take children along."""
        order.status = "Cancelled"
        order.held = False
        self._send_status(order)
        if code is not None:
            for session in self._client_sessions(order.client_id):
                session.send(wire.error(order.order_id, code, text))
        for child in self._children(order):
            if child.is_working:
                self._cancel(child, None, "")

    def _cancel_order(self, session: _Session, fields: list[str]) -> None:
        order_id = wire.parse_order_id(fields)
        assert session.client_id is not None
        order = self._order(session.client_id, order_id)
        if order is None:
            session.send(
                wire.error(
                    order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
                )
            )
        elif not order.is_working:
            session.send(
                wire.error(
                    order_id,
                    10148,
                    f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                    f"state: {order.status}.",
                )
            )
        else:
            self._cancel(order, 202, "Order Canceled - reason:")

    def _req_global_cancel(self, session: _Session, fields: list[str]) -> None:
        for order in self.orders:
            if order.is_working:
                self._cancel(order, 202, "Order Canceled - reason:Global Cancel")

    def _fill(
        self,
        order: GatewayOrder,
        price: Decimal,
        chunks: tuple[int, ...] | None,
        future: ListedFuture,
    ) -> None:
        sizes: list[int] = []
        left = order.remaining
        for chunk in chunks or ():
            if left <= 0:
                break
            sizes.append(min(chunk, left))
            left -= sizes[-1]
        if left > 0:
            sizes.append(left)
        for size in sizes:
            if order.is_working:
                self._execute(order, size, price, future)

    def _execute(
        self, order: GatewayOrder, shares: int, price: Decimal, future: ListedFuture
    ) -> None:
        order.avg_fill_price = (order.avg_fill_price * order.filled + price * shares) / (
            order.filled + shares
        )
        order.filled += shares
        order.last_fill_price = price
        final = order.filled == order.quantity
        order.status = "Filled" if final else "Submitted"
        signed = shares if order.action == "BUY" else -shares
        book = self._books.setdefault((order.account, order.con_id), _Book())
        gross = book.apply(signed, price, Decimal(future.multiplier))
        commission = self.commission * shares
        self._commissions[order.account] = (
            self._commissions.get(order.account, Decimal(0)) + commission
        )
        self._exec_seq += 1
        execution = GatewayExecution(
            exec_id=f"0000e0d5.{self._exec_seq:08x}.01.01",
            order_id=order.order_id,
            perm_id=order.perm_id,
            client_id=order.client_id,
            order_ref=order.order_ref,
            con_id=order.con_id,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=shares,
            price=price,
            time=self._now(),
            commission=commission,
            account=order.account,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            realized_pnl=None if gross is None else gross - commission,
        )
        self.executions.append(execution)
        for session in self._client_sessions(order.client_id):
            exec_part = [wire.exec_details(session.server_version, -1, execution, future)]
            status_part = [self._open_order_message(session, order)] if final else []
            status_part += [self._status_message(order)] * (1 + self.faults.duplicate_statuses)
            commission_part = [self._commission_message(execution)]
            sequence = {
                "exec_first": exec_part + status_part + commission_part,
                "status_first": status_part + exec_part + commission_part,
                "commission_first": commission_part + exec_part + status_part,
            }[self.faults.fill_sequence]
            for message in sequence:
                self._report(session, message, fill=True)
        for session in self._ready_sessions():
            if session.positions:
                session.send(self._position_message(order.account, order.con_id))
            if session.account_updates == order.account:
                session.send(self._portfolio_message(order.account, order.con_id))
                self._send_account_values(session, order.account)
        self._after_fill(order)

    def _after_fill(self, order: GatewayOrder) -> None:
        if order.oca_group:
            for other in self.orders:
                if (
                    other is not order
                    and other.oca_group == order.oca_group
                    and other.account == order.account
                    and other.is_working
                    and other.live
                ):
                    self._cancel(other, None, "")
        if order.parent_id:
            parent = self._order(order.client_id, order.parent_id)
            if parent is not None:
                for sibling in self._children(parent):
                    if sibling is not order and sibling.is_working and sibling.live:
                        self._cancel(sibling, None, "")
        if order.status == "Filled":
            for child in self._children(order):
                if child.live and not child.active and child.is_working:
                    child.active = True
                    if child.order_type == "MKT":
                        self._start_market(child)
                    else:
                        child.status = "Submitted"
                        self._announce(child, child.status)

    # ------------------------------------------------------------ message helpers

    def _announce(self, order: GatewayOrder, status: str) -> None:
        """openOrder plus orderStatus to the order's client."""
        for session in self._client_sessions(order.client_id):
            self._report(session, self._open_order_message(session, order, status))
        self._send_status(order)

    def _send_status(self, order: GatewayOrder) -> None:
        message = self._status_message(order)
        for session in self._client_sessions(order.client_id):
            for _ in range(1 + self.faults.duplicate_statuses):
                self._report(session, message)

    def _report(self, session: _Session, message: wire.Message, *, fill: bool = False) -> None:
        """An unasked report about an order: sent, or held (``faults.hold_order_reports``,
        ``faults.hold_fill_reports``)."""
        if self.faults.hold_order_reports or (fill and self.faults.hold_fill_reports):
            self._held_reports.append((session, message))
        else:
            session.send(message)

    def _open_order_message(
        self, session: _Session, order: GatewayOrder, status: str | None = None
    ) -> wire.Message:
        return wire.open_order(
            session.server_version,
            order,
            self._future(order.con_id),
            order.status if status is None else status,
        )

    @staticmethod
    def _status_message(order: GatewayOrder) -> wire.Message:
        return wire.order_status(
            order_id=order.order_id,
            status=order.status,
            filled=order.filled,
            remaining=order.remaining,
            avg_fill_price=order.avg_fill_price,
            perm_id=order.perm_id,
            parent_id=order.parent_id,
            last_fill_price=order.last_fill_price,
            client_id=order.client_id,
        )

    def _commission_message(self, execution: GatewayExecution) -> wire.Message:
        future = self._future(execution.con_id)
        return wire.commission_report(
            execution.exec_id, execution.commission, future.currency, execution.realized_pnl
        )

    def _position_message(self, account: str, con_id: int) -> wire.Message:
        future = self._future(con_id)
        book = self._books.get((account, con_id), _Book())
        return wire.position(
            account, future, book.quantity, book.avg_price * Decimal(future.multiplier)
        )

    def _portfolio_message(self, account: str, con_id: int) -> wire.Message:
        future = self._future(con_id)
        book = self._books.get((account, con_id), _Book())
        multiplier = Decimal(future.multiplier)
        price = self._last_close.get(con_id, book.avg_price)
        return wire.update_portfolio(
            future=future,
            quantity=book.quantity,
            market_price=price,
            market_value=price * book.quantity * multiplier,
            average_cost=book.avg_price * multiplier,
            unrealized_pnl=(price - book.avg_price) * book.quantity * multiplier,
            realized_pnl=book.realized,
            account=account,
        )

    def _account_values(self, account: str) -> list[tuple[str, str, str]]:
        realized = sum(
            (b.realized for (acct, _), b in self._books.items() if acct == account), Decimal(0)
        )
        unrealized = Decimal(0)
        for (acct, con_id), book in self._books.items():
            if acct == account and book.quantity:
                price = self._last_close.get(con_id, book.avg_price)
                multiplier = Decimal(self._future(con_id).multiplier)
                unrealized += (price - book.avg_price) * book.quantity * multiplier
        cash = INITIAL_CASH + realized - self._commissions.get(account, Decimal(0))
        return [
            ("AccountCode", account, ""),
            ("NetLiquidation", wire.fmt_decimal(cash + unrealized), "USD"),
            ("TotalCashValue", wire.fmt_decimal(cash), "USD"),
            ("RealizedPnL", wire.fmt_decimal(realized), "USD"),
            ("UnrealizedPnL", wire.fmt_decimal(unrealized), "USD"),
        ]

    def _send_account_values(self, session: _Session, account: str) -> None:
        for key, value, currency in self._account_values(account):
            session.send(wire.update_account_value(key, value, currency, account))

    def _send_account(self, session: _Session, account: str) -> None:
        self._send_account_values(session, account)
        for (acct, con_id), book in sorted(self._books.items()):
            if acct == account and book.quantity:
                session.send(self._portfolio_message(account, con_id))

    _handlers: ClassVar[dict[int, Callable[[TwsGateway, _Session, list[str]], None]]] = {
        61: _req_positions,
        64: _cancel_positions,
        5: _req_open_orders,
        16: _req_all_open_orders,
        99: _req_completed_orders,
        6: _req_account_updates,
        76: _req_account_updates_multi,
        62: _req_account_summary,
        7: _req_executions,
        8: _req_ids,
        49: _req_current_time,
        9: _req_contract_details,
        50: _req_real_time_bars,
        51: _cancel_real_time_bars,
        20: _req_historical_data,
        25: _cancel_historical_data,
        3: _place_order,
        4: _cancel_order,
        58: _req_global_cancel,
    }
