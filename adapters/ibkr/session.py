"""The connection supervisor: keeps one IB API session healthy and tells the engine what it must know.

What it answers (``reference/operations.md`` §2):

* connect with jittered exponential backoff; after error 326 (client id in use) wait long enough for
  the Gateway to clear the old session, and keep the same id (orders are visible per client id);
* on every (re)connect: resolve the contract, (re)subscribe bars and fill the gap, report what
  happened to our orders while away (by key), and reconcile the position and the protective orders;
* 1100 (IB lost): close the ``broker_link`` entry gate; 1101 (restored, data lost): resubscribe,
  backfill, reconcile, reopen; 1102 (restored, data kept): reconcile, reopen;
* data-farm notices (2103/2105/2157...) are data events: never a reason to drop the order link; when
  a broken farm comes back, the bar stream is resubscribed;
* a stale-bar watchdog that knows the session calendar: quiet through halts, weekends and holidays;
  otherwise it alerts once and resubscribes with backoff while the feed stays stale;
* the roll: when the front month changes and we hold nothing in the old one, switch to the new one;
* a periodic reconcile (every five minutes by default), since IB does not replay missed callbacks;
* every code IB sends goes through one table (:mod:`adapters.ibkr.errors`) and is counted by class:
  no or delayed market data (354, 10089, 10167, 10168...) and a competing session (10197) gate
  entries with one alert until a bar flows again; a Gateway that cannot serve us (503, 505) gates
  entries and pages; an unknown code is logged with its text.

Entry gates and reconcile reports go to the engine through the order-event sink; alerts go to the
notifier. The engine's own rules decide the rest (fail closed on any mismatch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal, InvalidOperation
from typing import Any

from ib_async import Contract, Fill, MarketOrder, Trade

from adapters.ibkr.backoff import Backoff, ConnectFailure
from adapters.ibkr.broker import IbkrBroker
from adapters.ibkr.client import IbClient, IbConnectError
from adapters.ibkr.contracts import ContractError, IbkrContractResolver
from adapters.ibkr.errors import Action, Notice, NoticeClass, classify, in_plain_words
from adapters.ibkr.heartbeat import READY_GATE, GatewayHeartbeat, duration
from adapters.ibkr.market_data import IbkrMarketData
from adapters.ibkr.staleness import Freshness, StaleBarWatchdog
from application.backoff import REMINDERS, BackoffPolicy, Reminders
from application.ports import Clock, Notifier, OrderEventSink
from application.reconcile import broker_report
from domain.bar import Bar
from domain.commands import Alert, AlertKind, Severity
from domain.contract import FutureContract
from domain.events import EntryGateChanged, protective_kind

log = logging.getLogger(__name__)

GATE = "broker_link"

ACCOUNT_GATE = "ib_account"
PAPER_PREFIXES = ("DU", "DF")
"""IB's paper account ids: DU (an individual's), DF (an advisor's master)."""
MARGIN_GATE = "margin"
DATA_GATE = "market_data"
"""Entries wait while IB sends no (or only delayed) data: a missing subscription, a competing
session. Reopened by the first bar that starts after the gate closed."""
FATAL_GATE = "ib_gateway"
STALE_RETRY_MAX_S = 300.0
"""Longest wait, in market seconds, between resubscribes while the feed stays stale."""
STALE_ALERT_GAP_S = 600.0
"""A feed that goes stale again within this many market seconds of the last alert is only logged."""


def _amount(value: object, what: str) -> Decimal:
    """A what-if figure as Decimal; IB's "unset" (empty, or its largest double) is no answer."""
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"IB gave no {what}") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e300"):
        raise ValueError(f"IB gave no {what}")
    return amount


class IbkrSession:
    """Owns the connection lifecycle of one :class:`IbClient` and the adapters on it."""

    def __init__(
        self,
        *,
        client: IbClient,
        broker: IbkrBroker,
        market_data: IbkrMarketData,
        resolver: IbkrContractResolver,
        sink: OrderEventSink,
        notifier: Notifier,
        clock: Clock,
        watchdog: StaleBarWatchdog,
        backoff: Backoff,
        watchdog_interval_s: float = 5.0,
        roll_check_interval_s: float = 3600.0,
        reconcile_interval_s: float = 300.0,
        max_connect_attempts: int | None = None,
        stale_retry_max_s: float = STALE_RETRY_MAX_S,
        heartbeat_interval_s: float | None = 30.0,
        max_clock_skew_s: float | None = None,
        paper_only: bool = False,
        margin_check_qty: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        reminders: BackoffPolicy = REMINDERS,
    ) -> None:
        self.client = client
        self.broker = broker
        self.market_data = market_data
        self.resolver = resolver
        self._sink = sink
        self._notifier = notifier
        self._clock = clock
        self._watchdog = watchdog
        self._backoff = backoff
        self._watch_every = watchdog_interval_s
        self._roll_every = roll_check_interval_s
        self._reconcile_every = reconcile_interval_s
        self._last_reconcile: float | None = None
        self._max_attempts = max_connect_attempts
        # The feed watchdog, its retries, the reconcile and roll checks run on the daemon's clock
        # (market time, which the feed follows). Reconnect backoff runs on ``sleep``, wall time:
        # it spares the Gateway, a local program, a storm of connects.
        self._sleep = sleep
        self._monotonic = monotonic
        self._down = Reminders(reminders)
        """While IB Gateway takes no connection: when to tell the operator again (wall time)."""
        self._stale_retry_max_s = stale_retry_max_s
        self._stale_retry_at: float | None = None
        self._stale_retry_delay = 0.0
        self._last_stale_alert: float | None = None
        self.contract: FutureContract | None = None
        self.link_up = False
        self.reconnects = 0
        self.stale_alerts = 0
        self.feed_checks = 0
        self.last_error: str | None = None
        self._farms_broken: set[int] = set()
        self.notices: Counter[str] = Counter({c.value: 0 for c in NoticeClass})
        """IB's codes seen, by class (``/metrics``)."""
        self.unknown_codes: Counter[int] = Counter()
        self._data_gated_at: float | None = None
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_roll_check: float | None = None
        self._paper_only = paper_only
        self._margin_qty = margin_check_qty
        self.margin_checked: str | None = None
        """The last what-if's figures, in words (None: not checked)."""
        self._heartbeat_every = heartbeat_interval_s
        self._beating: asyncio.Task[None] | None = None
        self.heartbeat = GatewayHeartbeat(
            client,
            sink,
            notifier,
            clock,
            interval_s=heartbeat_interval_s or 0.0,
            max_skew_s=max_clock_skew_s,
            on_ready=self._answering_again,
            hold=lambda reason: broker.hold(READY_GATE, reason),
            sleep=sleep,
            monotonic=monotonic,
            reminders=reminders,
        )
        self.protection_checks = 0
        self._verify_lock = asyncio.Lock()
        self._verifying: asyncio.Task[None] | None = None
        client.on_error(self._on_error)
        client.on_disconnected(self._on_disconnected)
        client.on_execution(self._on_execution)
        market_data.on_bar(self._on_bar)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying with backoff) and bring everything up; then watch the feed."""
        self._gate("not connected to IB Gateway yet")
        try:
            await self._connect(self._max_attempts)
        except BaseException:
            self._closing = True  # a failed start leaves nothing connected or reconnecting
            self.client.disconnect()
            raise
        loop = asyncio.get_running_loop()
        self._watching = loop.create_task(self._watch())
        if self._heartbeat_every:
            self._beating = loop.create_task(self.heartbeat.run(), name="IB Gateway heartbeat")
            self._beating.add_done_callback(self._task_done)

    async def close(self) -> None:
        """Stop watching and reconnecting, end the bar stream, disconnect."""
        self._closing = True
        tasks = [
            t
            for t in (self._reconnecting, self._watching, self._beating, *self._tasks)
            if t is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.broker.close()
        self.market_data.close()
        self.client.disconnect()

    # -- connecting ---------------------------------------------------------------------------

    async def _connect(self, max_attempts: int | None = None) -> None:
        """Connect, retrying with backoff; ``max_attempts`` bounds the tries (start-up only: once
        running, the reconnect loop never gives up)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                await self.client.connect()
                break
            except IbConnectError as exc:
                self.last_error = str(exc)
                if max_attempts is not None and attempts >= max_attempts:
                    raise
                self._still_down(f"cannot connect: {exc}")
                if exc.failure is ConnectFailure.CLIENT_ID_IN_USE:
                    delay = self._backoff.after_client_id_in_use()
                else:
                    delay = self._backoff.next_delay()
                log.warning("connect attempt %d failed (%s); next in %.1f s", attempts, exc, delay)
                await self._sleep(delay)
        self._backoff.reset()
        await self._bring_up(reconnect=self.contract is not None)

    def _still_down(self, why: str) -> None:
        """A connect (or the bring-up after it) failed: the operator hears of it at once, then
        again after 5, 10, 20, 40 min and hourly while IB Gateway stays out of reach. A Gateway
        that never comes back after its weekly restart is the failure other bots died of: one
        alert, then days of silence (``reference/operations.md`` §6 #1)."""
        now = self._monotonic()
        self._down.start(now)
        if not self._down.due(now):
            return
        if self._down.sent == 1:
            self._alert(AlertKind.CONNECTION, Severity.WARNING, why)
            return
        self._alert(
            AlertKind.CONNECTION,
            Severity.CRITICAL,
            f"IB Gateway has been out of reach for {duration(self._down.elapsed(now))} ({why}): "
            "entries are stopped and no order can be sent; the broker's stop and target stay at "
            "IB. If it restarted, it is probably waiting for its login (each week, with "
            "two-factor): log in on the Gateway or approve the IBKR Mobile notification; "
            "otherwise start IB Gateway. The bot reconnects by itself.",
        )

    async def _bring_up(self, *, reconnect: bool) -> None:
        """After a connect: the account and IB's clock checked, contract, bars (with the gap
        filled), order resync, reconcile."""
        self._check_account()
        await self.heartbeat.check_clock()
        now = self._clock.now()
        if self.contract is None:
            self.contract = await self.resolver.front_month(now)
        ib_contract = self.resolver.ib_contract(self.contract)
        self.broker.use_contract(ib_contract)
        if reconnect and self.market_data.contract is not None:
            filled = await self.market_data.recover()
        else:
            await self.market_data.subscribe(ib_contract)
            filled = 0
        if not reconnect:
            await self._check_margin(ib_contract)
        await self.broker.resync()
        await self.verify_protection("after the reconnect" if reconnect else "at connect")
        await self.reconcile("connected" if not reconnect else "reconnected")
        self.heartbeat.connected()  # a silence before this connection is over, reconciled
        self.link_up = True
        self._sink.put(EntryGateChanged(GATE, None, self._clock.now()))
        outage = self._down.elapsed(self._monotonic())
        self._down.clear()
        if reconnect:
            self.reconnects += 1
            after = f" after {duration(outage)}" if outage >= 60.0 else ""
            self._alert(
                AlertKind.CONNECTION,
                Severity.INFO,
                f"reconnected to IB Gateway{after}; {filled} missed bars filled in; "
                "position reconciled",
            )
        else:
            self._alert(
                AlertKind.CONNECTION,
                Severity.INFO,
                f"connected to IB Gateway (server version {self.client.server_version}), "
                f"trading {self.contract.local_symbol}",
            )

    async def verify_protection(self, when: str) -> None:
        """Both children of our bracket, as IB holds them: GTC and outside regular hours, or put
        right with an alert (:meth:`IbkrBroker.verify_protection`). One check at a time: two
        would both see a leg as DAY until IB confirms the first one's change."""
        try:
            async with self._verify_lock:
                fixed = await self.broker.verify_protection()
        except (TimeoutError, ConnectionError) as exc:
            log.warning(
                "the bracket could not be verified %s: %s", when, str(exc) or type(exc).__name__
            )
            return
        self.protection_checks += 1
        for line in fixed:
            self._alert(AlertKind.ANOMALY, Severity.WARNING, f"bracket checked {when}: {line}")

    def _on_execution(self, trade: Trade, fill: Fill) -> None:
        """An entry (or exit) of ours filled at IB: check the bracket's children once it is in."""
        key = fill.execution.orderRef
        if not self.broker.is_ours(key) or protective_kind(key) is not None:
            return
        if self._verifying is None or self._verifying.done():
            self._verifying = asyncio.get_running_loop().create_task(
                self.verify_protection("after the entry filled")
            )
            self._tasks.add(self._verifying)
            self._verifying.add_done_callback(self._task_done)

    async def _check_margin(self, contract: Contract) -> None:
        """A what-if order for one entry (``risk.max_position_size`` contracts): an account that
        cannot carry it gets no entry, and the operator the figures. Nothing is placed."""
        qty = self._margin_qty
        if qty is None:
            return
        now = self._clock.now()
        try:
            order = MarketOrder("BUY", qty, account=self.client.account)
            state = await self.client.what_if(contract, order)
            need = _amount(state.initMarginAfter, "initial margin after")
            have = _amount(state.equityWithLoanAfter, "equity with loan after")
        except (TimeoutError, ConnectionError, ValueError) as exc:
            what = str(exc) or type(exc).__name__
            self._alert(
                AlertKind.CONNECTION,
                Severity.WARNING,
                f"the margin for one entry could not be checked with IB ({what}): trading on",
            )
            return
        figures = (
            f"IB's what-if for BUY {qty} {contract.localSymbol or contract.symbol}: initial "
            f"margin after {need:,.2f} USD, equity with loan {have:,.2f} USD"
        )
        self.margin_checked = figures
        if need <= have:
            log.info("margin checked: %s", figures)
            self._sink.put(EntryGateChanged(MARGIN_GATE, None, now))
            return
        reason = (
            f"{figures}: the account cannot carry one entry; fund it or lower "
            "risk.max_position_size, then restart the daemon (it checks at start-up)"
        )
        self._sink.put(EntryGateChanged(MARGIN_GATE, reason, now))
        self._alert(AlertKind.CONNECTION, Severity.CRITICAL, f"refusing to arm: {reason}")

    def _check_account(self) -> None:
        """With ``ibkr.paper``, a Gateway logged in to anything but a paper account (``DU…``)
        gets no order and opens no entry; the operator is told which account it found."""
        if not self._paper_only:
            return
        account = self.client.account
        if account.startswith(PAPER_PREFIXES):
            self.broker.hold(ACCOUNT_GATE, None)
            self._sink.put(EntryGateChanged(ACCOUNT_GATE, None, self._clock.now()))
            return
        found = f"account {account}" if account else "no single account (set ibkr.account)"
        reason = (
            f"ibkr.paper is true but IB Gateway is logged in to {found}; paper accounts start "
            "with DU (DF for an advisor's): log the Gateway in to the paper account, or set "
            "ibkr.paper: false to trade this one"
        )
        self.broker.hold(ACCOUNT_GATE, reason)
        self._sink.put(EntryGateChanged(ACCOUNT_GATE, reason, self._clock.now()))
        self._alert(AlertKind.CONNECTION, Severity.CRITICAL, f"refusing to trade: {reason}")

    async def _answering_again(self) -> None:
        """The Gateway answers after a silence: what it did meanwhile is asked before entries
        reopen (the heartbeat reopens them once this returns)."""
        await self.broker.resync()
        await self.reconcile("IB Gateway answers again")

    async def reconcile(self, reason: str) -> None:
        """Ask IB for our position and working orders; the engine compares them with its own."""
        self._last_reconcile = self._seconds()
        self._sink.put(await broker_report(self.broker, self._clock.now(), reason))

    def _on_disconnected(self) -> None:
        if self._closing:
            return
        self.link_up = False
        self._gate("disconnected from IB Gateway")
        if self._reconnecting is not None and not self._reconnecting.done():
            return  # the reconnect loop dropped the link itself and carries on
        self._down.start(self._monotonic())
        self._alert(AlertKind.CONNECTION, Severity.WARNING, "lost the connection to IB Gateway")
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Reconnect until it works: a connect that fails, or a bring-up after it that fails (a
        resync that times out, say), is retried after the next backoff step."""
        while not self._closing:
            await self._sleep(self._backoff.next_delay())
            try:
                await self._connect()
                return
            except Exception as exc:  # whatever failed, the link must come back: try again
                self.last_error = str(exc) or type(exc).__name__
                self._still_down(f"reconnect failed: {self.last_error}; trying again")
                if not self._closing:
                    self.client.disconnect()

    # -- IB's notices -------------------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, text: str) -> None:
        """Every code IB sends, through the one table (:mod:`adapters.ibkr.errors`). Codes about
        an order reach the broker through the order's status; here they are only counted."""
        notice = classify(code, text)
        self.notices[notice.cls.value] += 1
        action = notice.action
        if notice.cls is NoticeClass.UNKNOWN:
            self.unknown_codes[code] += 1
            log.warning("IB code %d (request %d) is not in the table: %s", code, req_id, text)
        elif action is Action.LINK_LOST:
            self.link_up = False
            self._gate("IB lost its connection to the Gateway (1100)")
            self._alert(AlertKind.CONNECTION, Severity.WARNING, f"IB connectivity lost: {text}")
        elif action is Action.RESTORED_DATA_LOST:
            self._spawn(self._restored(data_lost=True))
        elif action is Action.RESTORED_DATA_KEPT:
            self._spawn(self._restored(data_lost=False))
        elif action is Action.FARM_DOWN:
            if code not in self._farms_broken:
                self._farms_broken.add(code)
                log.warning("data farm notice %d: %s", code, text)
        elif action is Action.FARM_UP:
            broken = {c for c in self._farms_broken if c + 1 == code}  # 2103 → 2104 and so on
            if broken:
                self._farms_broken -= broken
                self._spawn(self.market_data.recover())
        elif action in (Action.GATE_ENTITLEMENT, Action.GATE_COMPETING_SESSION):
            self._data_outage(notice, text)
        elif action is Action.GATE_FATAL:
            self._sink.put(EntryGateChanged(FATAL_GATE, notice.plain, self._clock.now()))
            self._alert(
                AlertKind.CONNECTION,
                Severity.CRITICAL,
                f"IB Gateway cannot serve this daemon: {in_plain_words(code, text)}; entries "
                "stay stopped until it is fixed and the daemon restarted",
            )
        elif notice.cls in (NoticeClass.CONNECTIVITY, NoticeClass.PACING) or action in (
            Action.FEED_DROPPED,
        ):
            log.warning("IB %s", in_plain_words(code, text))
        else:
            log.info("IB %s", in_plain_words(code, text))

    def _data_outage(self, notice: Notice, text: str) -> None:
        """No data, or only delayed data: entries wait, and the operator hears it once however
        often IB repeats it (10197 comes in bunches of 10-20)."""
        if notice.action is Action.GATE_COMPETING_SESSION:
            what = (
                "IB sends no market data while another session of this user is logged in "
                "(10197): log out the other session (TWS, the mobile or web app)"
            )
        else:
            what = (
                f"IB: {in_plain_words(notice.code, text)}; subscribe to CME real-time data for "
                "MES in IBKR's Client Portal (Settings > Market Data Subscriptions)"
            )
        if self._data_gated_at is None:
            self._data_gated_at = self._clock.now().timestamp()
            self._alert(AlertKind.STALE_DATA, Severity.CRITICAL, f"entries stopped: {what}")
        self._sink.put(EntryGateChanged(DATA_GATE, what, self._clock.now()))

    async def _restored(self, *, data_lost: bool) -> None:
        try:
            if data_lost:
                filled = await self.market_data.recover()
                note = f"data was lost: resubscribed, {filled} missed bars filled in"
            else:
                note = "data kept"
            await self.broker.resync()
            await self.reconcile("connectivity restored")
        except Exception as exc:
            # Entries stay gated; a fresh connection redoes everything the recovery could not.
            what = str(exc) or type(exc).__name__
            self._alert(
                AlertKind.CONNECTION,
                Severity.CRITICAL,
                f"recovery after IB restored connectivity failed ({what}): reconnecting",
            )
            if not self._closing:
                self.client.disconnect()
            return
        self.link_up = True
        self._sink.put(EntryGateChanged(GATE, None, self._clock.now()))
        self._alert(AlertKind.CONNECTION, Severity.INFO, f"IB connectivity restored ({note})")

    # -- the feed watchdog and the roll -------------------------------------------------------

    def _on_bar(self, bar: Bar) -> None:
        self._watchdog.note_bar(bar.end_epoch)
        gated_at = self._data_gated_at
        if gated_at is not None and bar.epoch >= gated_at:
            self._data_gated_at = None
            self._sink.put(EntryGateChanged(DATA_GATE, None, self._clock.now()))
            self._alert(
                AlertKind.STALE_DATA, Severity.INFO, "market data flows again: entries resume"
            )

    async def _watch(self) -> None:
        failing: str | None = None
        while True:
            await self._clock.sleep(self._watch_every)
            try:
                await self.check_feed()
                await self.check_roll()
                await self.check_periodic()
                failing = None
            except Exception as exc:  # the watchdog must outlive any one failed check
                what = f"{type(exc).__name__}: {exc}"
                log.warning("IB session check failed: %s", what)
                if failing != what:
                    failing = what
                    self._alert(
                        AlertKind.ANOMALY, Severity.WARNING, f"IB session check failed: {what}"
                    )

    async def check_periodic(self) -> None:
        """Every ``reconcile_interval_s``: the bracket checked and the position reconciled. Not
        while IB Gateway answers nothing: the requests would only time out, and a failed
        reconcile halts entries with a mismatch alert on top of the silence's own; the heartbeat
        reconciles as soon as it answers again."""
        if not self.link_up or not self.heartbeat.ready:
            return
        now = self._seconds()
        if self._last_reconcile is not None and now - self._last_reconcile < self._reconcile_every:
            return
        await self.verify_protection("periodic check")
        if self.heartbeat.ready:  # not if it fell silent while the bracket was checked
            await self.reconcile("periodic")

    async def check_feed(self) -> None:
        """One watchdog check: alert once when the feed goes stale, resubscribe with backoff.

        The retries follow the daemon's clock: the first at once, then after ``stale_grace_s``,
        doubling up to ``stale_retry_max_s`` while the feed stays stale.
        """
        if not self.link_up or self.market_data.filling:
            return  # a gap being filled holds newer bars back: that is not a stale feed
        self.feed_checks += 1
        now = self._seconds()
        verdict = self._watchdog.check(int(now))
        if verdict.state is not Freshness.STALE:
            self._stale_retry_at = None
            return
        retry_at = self._stale_retry_at
        first = verdict.stale_checks == 1 or retry_at is None
        if retry_at is not None and not first and now < retry_at:
            return
        text = f"no bar for {verdict.age_s} s while the market is open: resubscribing"
        if self._last_stale_alert is None or now - self._last_stale_alert >= STALE_ALERT_GAP_S:
            self.stale_alerts += 1
            self._last_stale_alert = now
            self._alert(AlertKind.STALE_DATA, Severity.WARNING, text)
        else:  # a feed that flaps is one alert per STALE_ALERT_GAP_S, the rest in the log
            log.warning("%s (alerted %d s ago)", text, now - self._last_stale_alert)
        if first:
            self._stale_retry_delay = self._watchdog.grace_s
        else:
            self._stale_retry_delay = min(self._stale_retry_max_s, self._stale_retry_delay * 2)
        self._stale_retry_at = now + self._stale_retry_delay
        await self.market_data.recover()

    async def check_roll(self, *, force: bool = False) -> None:
        """Switch to the new front month once its roll starts, if nothing is held in the old one."""
        now = self._seconds()
        if not force and (
            self._last_roll_check is not None and now - self._last_roll_check < self._roll_every
        ):
            return
        self._last_roll_check = now
        if not self.link_up or self.contract is None:
            return
        try:
            front = await self.resolver.front_month(self._clock.now())
        except (ContractError, TimeoutError, ConnectionError) as exc:
            log.warning("roll check failed: %s", str(exc) or type(exc).__name__)
            return
        if front.con_id == self.contract.con_id:
            return
        if await self.broker.position() != 0 or self.broker.working_orders():
            log.info("front month is now %s; waiting until flat to roll", front.local_symbol)
            return
        old = self.contract
        self.contract = front
        ib_contract = self.resolver.ib_contract(front)
        self.broker.use_contract(ib_contract)
        await self.market_data.subscribe(ib_contract)
        self._alert(
            AlertKind.CONNECTION,
            Severity.INFO,
            f"rolled from {old.local_symbol} to {front.local_symbol}",
        )

    # -- helpers ------------------------------------------------------------------------------

    def _seconds(self) -> float:
        return self._clock.now().timestamp()

    def _gate(self, reason: str) -> None:
        self._sink.put(EntryGateChanged(GATE, reason, self._clock.now()))

    def _alert(self, kind: AlertKind, severity: Severity, text: str) -> None:
        self._notifier.notify(Alert(kind, severity, text, self._clock.now()))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("IB session task failed: %r", task.exception())
