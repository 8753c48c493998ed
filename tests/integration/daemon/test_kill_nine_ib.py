"""Issue 13's proof on IB Gateway: ``kill -9`` the IB daemon seven times (five times with a position
open and its bracket working at IB), restart it each time against the same gateway (its orders,
positions and executions kept), and it ends with exactly the round trips, fills, breaker events and
order intents of an uninterrupted run.

Both runs are real processes (``quant-scalper run`` with ``daemon.broker: ibkr``), each with its own
journal and its own TWS test gateway, fed the same scripted 5-second bars: four round trips, closed
by the bracket's target, by its stop (a losing streak of one: the breaker pauses entries) and twice
by the strategy's exit signal.

The bars are stamped in the recent past (the daemon's clock is the system's: a bar from the future
is refused) and pushed as fast as the daemon settles. Every kill comes after the last bar of a
strategy bar, once the daemon has decided it: a daemon that dies mid-bar and comes back while the
same minute's bars are still being pushed would see that minute twice (IB's history serves it as
complete, the stream then goes on with it), which a real restart, at the real time, cannot. Nothing
is pushed while the daemon is dead: bars it cannot see would make the runs differ for a reason that
is no bug. Three kills wait until the daemon has carried its decision out and saved its state (one
is followed by another as the daemon starts again); two come the moment IB has filled the order the
daemon just sent (an entry, an exit); one leaves the exit working at IB, which fills meanwhile.

Each settled restart's first strategy bar is a signal in the uninterrupted run (an entry, two exits):
the restarted daemon warmed its z-score up from IB's history, or it would not signal there.

The same script proves replay parity on IB: the bars the daemon journaled, replayed, make its
signals and round trips.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.sql.database import create_engine
from adapters.sql.queries import SqlJournalReader
from adapters.sql.serialization import snapshot_from_json
from domain.commands import RoundTripRecord, SignalRecord
from domain.engine import EngineSnapshot
from entrypoints.container.store import store_url
from entrypoints.replay import load_store_series, run_replay
from entrypoints.settings import load_settings
from tests.support.live_process import (
    REQ_HISTORICAL_DATA,
    console_tail,
    daemon_env,
    start_daemon,
    wait_started,
)
from tests.support.tws import GatewayBar, TwsGateway

DB = "quant_scalper.sqlite3"
STEP = timedelta(seconds=5)
BARS_PER_MINUTE = 12
SETTLE_S = 60.0

Ohlc = tuple[str, str, str, str]
Minute = str | Sequence[str | Ohlc]
"""A strategy bar (1 minute): a flat close, or its twelve 5-second bars (a flat close or OHLC)."""

QUIET = ("5000", "5000.5") * 5
SCRIPT: tuple[Minute, ...] = (
    *QUIET,  # m0-m9: the z-score's window (10 closes)
    "4990",  # m10: z -2.99, LONG at 4990: stop 4980, target 5005
    ("4990", ("4992", "5006", "4992", "5000"), *["5000"] * 10),  # m11: the target fills (+15)
    "5000.5",
    "5000",
    "5012",  # m14: z 2.35, SHORT at 5012: stop 5022, target 4997
    ("5012", ("5013", "5022", "5012", "5015"), *["5001"] * 10),  # m15: the stop fills (-10)
    "5000",  # m16: paused (one loss in a row); nothing to enter on anyway
    "4984",  # m17: z -2.12, LONG at 4984: stop 4974, target 4999
    "4996",  # m18: z -0.34, exit signal: sold at 4996 (+12), IB holding it first (HELD_EXIT)
    "5000",
    "5000.5",
    "5022",  # m21: z 2.18, SHORT at 5022: stop 5032, target 5007
    "5018",  # m22: z 1.39, held
    "5009",  # m23: z 0.45, exit signal: bought at 5009 (+13)
    "5000",
)


@dataclass(frozen=True)
class Kill:
    position: int
    """Daemon B's position at IB once it is dead."""
    as_ib_fills: bool = False
    """Dead the moment IB has filled the order the daemon just sent (else once it has settled)."""
    exit_held: bool = False
    """Dead with the strategy bar's exit working at IB, unfilled; IB fills it while it is dead."""
    again_starting: bool = False
    """Killed again as it restarts, once subscribed (its reconcile and warm-up not done)."""


HELD_EXIT = 18
"""IB holds the market exit sent on this strategy bar until the daemon has settled on it, in both
runs; then fills it (in run B once the daemon is dead)."""
KILLS = {
    9: Kill(0),
    14: Kill(-1, as_ib_fills=True),
    17: Kill(+1, again_starting=True),
    HELD_EXIT: Kill(+1, exit_held=True),
    22: Kill(-1),
    23: Kill(0, as_ib_fills=True),
}
"""Daemon B dies after these strategy bars (indexes into SCRIPT). Three times once it has settled:
the next strategy bar signals in run A (m10 an entry, m18 and m23 an exit). Twice the moment IB has
filled what the daemon sent on the strategy bar (m14's entry, m23's exit): the daemon has not heard
of the fill yet, and wrote down only what it must before a send. Once with its exit working at IB
(m18), which fills while the daemon is dead. Once more (m17) as it starts again, with a position:
the kill that interrupts a restart's reconcile."""
SIGNAL_AFTER_RESTART = {10: "enter", 18: "exit", 23: "exit"}
ROUND_TRIPS = 4


def _minute_bars(start: datetime, minute: Minute) -> list[GatewayBar]:
    items = [minute] * BARS_PER_MINUTE if isinstance(minute, str) else list(minute)
    assert len(items) == BARS_PER_MINUTE, minute
    bars = []
    for i, item in enumerate(items):
        o, h, lo, c = (item,) * 4 if isinstance(item, str) else item
        bars.append(GatewayBar(start + i * STEP, Decimal(o), Decimal(h), Decimal(lo), Decimal(c)))
    return bars


def _script_start() -> datetime:
    """Whole minutes, ending a minute or more ago: every bar is past (the daemon refuses bars from
    the future) and, for the few minutes both runs take, inside the hour of IB history the
    warm-up asks for."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=len(SCRIPT) + 2)


# -- the journal, read-only -----------------------------------------------------------------------


def _query(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    path = data_dir / DB
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return list(conn.execute(sql))
    except sqlite3.OperationalError:
        return []  # the schema is still being created


def _count(data_dir: Path, table: str) -> int:
    rows = _query(data_dir, f"SELECT count(*) FROM {table}")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def _last_snapshot(data_dir: Path) -> tuple[EngineSnapshot, int | None] | None:
    rows = _query(data_dir, "SELECT body, resume FROM engine_snapshots ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    body, resume = rows[0]
    assert isinstance(body, str)
    next_epoch = None if resume is None else json.loads(str(resume))["next_bar_epoch"]
    return snapshot_from_json(body), next_epoch


def _outcome(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """What both runs must agree on (times are market times: the bars' and IB's fills')."""
    return {
        "round_trips": _query(
            data_dir,
            "SELECT seq, side, qty, entry_ts, entry_price, exit_ts, exit_price, exit_reason, "
            "pnl_ticks, gross_pnl, commissions, net_pnl, trade_date FROM round_trips "
            "ORDER BY exit_ts, seq",
        ),
        "fills": _query(
            data_dir,
            "SELECT exec_id, order_key, role, action, qty, price, ts, commission FROM fills "
            "ORDER BY ts, exec_id",
        ),
        "breaker_events": _query(
            data_dir,
            "SELECT kind, cause, ts, detail, until FROM breaker_events ORDER BY ts, kind, cause",
        ),
        "order_intents": _query(
            data_dir,
            'SELECT "key", role, action, qty, order_type, price, ts, detail FROM order_intents '
            'ORDER BY "key"',
        ),
        "signals": _query(
            data_dir,
            "SELECT bar_start, close, z, action, side, detail FROM signals ORDER BY bar_start, id",
        ),
        "bars": _query(
            data_dir,
            "SELECT ts, seconds, open, high, low, close, volume FROM bars ORDER BY ts, id",
        ),
    }


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Run:
    gateway: TwsGateway
    tmp: Path
    env: dict[str, str]
    con_id: int = 0
    pushed: int = 0
    kills: list[Kill] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp / "var"

    @property
    def console(self) -> Path:
        return self.tmp / "console.log"

    async def start(self) -> None:
        since = len(self.gateway.received)
        self.proc = await start_daemon(self.env, console=self.console)
        self.con_id = await wait_started(self.gateway, self.proc, since, console=self.console)

    async def die_starting(self, kill: Kill) -> None:
        """Start the daemon and SIGKILL it as soon as it has subscribed to the bars."""
        self.proc = await start_daemon(self.env, console=self.console)
        await self._until(lambda: bool(self.gateway.realtime_subscriptions), "the subscription")
        await self.kill(kill)

    async def push(self, bars: Sequence[GatewayBar]) -> None:
        """Push ``bars``, waiting for the daemon to settle after each one IB filled an order on
        (the next bar must not overtake the fill), and after the last."""
        for bar in bars:
            executions = len(self.gateway.executions)
            await self.gateway.push_bar(self.con_id, bar)
            self.pushed += 1
            if len(self.gateway.executions) != executions:
                await self.settled(bar, boundary=False)
        await self.settled(bars[-1], boundary=True)

    async def settled(self, bar: GatewayBar, *, boundary: bool, exit_held: bool = False) -> None:
        """Wait until the daemon has journaled every bar pushed and every fill IB made, carried
        out its decisions (no market order working at IB; with ``exit_held``, the exit that IB
        holds) and saved a snapshot that agrees with IB: the position's side (exiting it) and our
        working orders; at a strategy-bar ``boundary``, one saved at it (its decision carried
        out)."""
        gateway, epoch = self.gateway, int(bar.start.timestamp())

        def unsettled() -> str | None:
            """What has not settled yet (None: everything)."""
            bars = _count(self.data_dir, "bars")
            if bars != self.pushed:
                return f"{bars} of {self.pushed} bars journaled"
            fills = _count(self.data_dir, "fills")
            if fills != len(gateway.executions):
                return f"{fills} of {len(gateway.executions)} fills at IB journaled"
            markets = [o for o in gateway.orders if o.is_working and o.order_type == "MKT"]
            if len(markets) != (1 if exit_held else 0):
                return f"market orders working at IB: {[o.order_ref for o in markets]}"
            last = _last_snapshot(self.data_dir)
            if last is None:
                return "no snapshot"
            snapshot, next_epoch = last
            if boundary and (next_epoch is None or next_epoch <= epoch):
                return f"the last snapshot is of the boundary before {next_epoch}"
            side = {0: "IDLE", 1: "LONG", -1: "SHORT"}[gateway.position(self.con_id)]
            if exit_held:
                side = f"EXITING_{side}"
            working = {o.order_ref for o in gateway.orders if o.is_working}
            known = {o.key for o in snapshot.orders}
            if snapshot.state.name != side or known != working:
                return (
                    f"the snapshot has {snapshot.state.name} with {sorted(known)}, IB {side} "
                    f"with {sorted(working)} (reconcile: {snapshot.reconcile_required})"
                )
            return None

        await self._until(
            lambda: unsettled() is None,
            f"the daemon to settle after the bar of {bar.start:%H:%M:%S}",
            still=unsettled,
        )

    async def kill_as_ib_fills(self, bars: Sequence[GatewayBar], kill: Kill) -> None:
        """Push ``bars`` (the last one makes the daemon send an order) and SIGKILL the daemon as
        soon as IB has filled that order: no settling, the daemon is caught right after its send."""
        executions = len(self.gateway.executions)
        for bar in bars:
            await self.gateway.push_bar(self.con_id, bar)
            self.pushed += 1
        await self._until(
            lambda: len(self.gateway.executions) > executions, "the order's fill at IB", every=0
        )
        await self.kill(kill)

    async def kill(self, kill: Kill) -> None:
        """SIGKILL the daemon; while it is dead, IB still holds the position and its bracket."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 30)
        assert self.proc.returncode == -signal.SIGKILL
        await self.gateway.wait_for(
            lambda: self.gateway.connections == 0,
            timeout=30,
            what="the dead daemon's socket closed",
        )
        self.kills.append(kill)
        # The OCA group takes the bracket down with an exit at IB itself, dead daemon or not.
        working = sorted(o.order_type for o in self.gateway.orders if o.is_working)
        assert self.gateway.position(self.con_id) == kill.position
        protected = ["LMT", "MKT", "STP"] if kill.exit_held else ["LMT", "STP"]
        assert working == ([] if kill.position == 0 else protected), (
            "a position must stay protected at IB, and nothing else work"
        )

    async def exit_held_then_filled(self, bars: Sequence[GatewayBar], kill: Kill | None) -> None:
        """IB holds the market exit that ``bars`` make the daemon send, until the daemon has
        settled on it; then, with ``kill`` once the daemon is dead, fills it at the last trade."""
        gateway = self.gateway
        gateway.faults.hold_fills = True
        for bar in bars:
            await gateway.push_bar(self.con_id, bar)
            self.pushed += 1
        await self.settled(bars[-1], boundary=True, exit_held=True)
        (held,) = [o for o in gateway.orders if o.held and o.is_working]
        if kill is not None:
            await self.kill(kill)
        gateway.faults.hold_fills = False
        await gateway.fill_held(held.order_ref)
        if kill is not None:
            await self.start()
        await self.settled(bars[-1], boundary=False)

    async def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), 60)
        assert self.proc.returncode == 0, console_tail(self.console)

    async def _until(
        self,
        condition: Callable[[], bool],
        what: str,
        *,
        every: float = 0.01,
        still: Callable[[], str | None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_S
        while not condition():
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(
                    f"the daemon exited while waiting for {what}: {console_tail(self.console)}"
                )
            if loop.time() > deadline:
                detail = f" ({still()})" if still is not None else ""
                raise AssertionError(
                    f"timed out waiting for {what}{detail}: {console_tail(self.console)}"
                )
            await asyncio.sleep(every)


async def _play(tmp: Path, start: datetime, kills: dict[int, Kill]) -> tuple[Run, list[str]]:
    """Play SCRIPT on a fresh gateway; kill and restart the daemon after the minutes in ``kills``.
    Returns the run and the gateway's orderRefs, in the order IB received the orders."""
    tmp.mkdir()
    async with TwsGateway() as gateway:
        env = daemon_env(
            gateway.port,
            tmp,
            QS_RISK__MAX_CONSECUTIVE_LOSSES="1",
            QS_RISK__PAUSE_MINUTES="1",
            QS_LOGGING__LEVEL="WARNING",
        )
        run = Run(gateway, tmp, env)
        await run.start()
        try:
            for index, minute in enumerate(SCRIPT):
                bars = _minute_bars(start + timedelta(minutes=index), minute)
                kill = kills.get(index)
                if index == HELD_EXIT:
                    await run.exit_held_then_filled(bars, kill)
                    continue
                if kill is not None and kill.as_ib_fills:
                    await run.kill_as_ib_fills(bars, kill)
                    await run.start()
                    await run.settled(bars[-1], boundary=False)
                    continue
                await run.push(bars)
                if kill is not None:
                    await run.kill(kill)
                    if kill.again_starting:
                        await run.die_starting(kill)
                    await run.start()
            await run.stop()
        finally:
            if run.proc is not None and run.proc.returncode is None:
                run.proc.kill()
                await run.proc.wait()
        return run, [o.order_ref for o in gateway.orders]


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_kill_nine_at_ib_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Run A uninterrupted, run B killed seven times (KILLS): the same journal, the same orders at
    IB, each once."""
    start = _script_start()
    clean, clean_refs = await _play(tmp_path / "clean", start, {})
    expected = _outcome(clean.data_dir)
    assert len(expected["round_trips"]) == ROUND_TRIPS
    reasons = [row[7] for row in expected["round_trips"]]
    assert reasons == ["target", "stop", "signal", "signal"], reasons
    assert expected["breaker_events"], "the losing trade pauses entries"
    signals = {row[0]: row[3] for row in expected["signals"]}
    for index, action in SIGNAL_AFTER_RESTART.items():
        bar_start = (start + timedelta(minutes=index)).strftime("%Y-%m-%d %H:%M:%S")
        assert any(
            str(ts).startswith(bar_start) and got == action for ts, got in signals.items()
        ), (index, action, signals)

    killed, killed_refs = await _play(tmp_path / "killed", start, KILLS)
    assert killed.kills == [k for k in KILLS.values() for _ in range(1 + k.again_starting)]
    got = _outcome(killed.data_dir)
    for table, rows in expected.items():
        assert got[table] == rows, f"{table} differs after {len(killed.kills)} kills"
    # Every bar pushed was journaled once; IB got each order once, the same ones.
    total = len(SCRIPT) * BARS_PER_MINUTE
    assert len(got["bars"]) == total
    assert len({row[0] for row in got["bars"]}) == total
    assert [ref for ref, n in Counter(killed_refs).items() if n > 1] == []
    assert killed_refs == clean_refs
    assert killed.gateway.position(killed.con_id) == clean.gateway.position(clean.con_id)


def _signal_key(signal: SignalRecord) -> tuple[object, ...]:
    return (
        signal.ts,
        signal.bar_start,
        signal.close,
        signal.z,
        signal.action,
        signal.side,
        signal.detail,
    )


@pytest.mark.timeout(180)
async def test_a_replay_of_the_bars_the_ib_daemon_journaled_makes_its_signals_and_trips(
    tmp_path: Path,
) -> None:
    """Issue 4's parity on IB: the bars the IB daemon recorded, replayed through the simulated
    venue, make the daemon's signals; and its round trips, with the fill model that is IB's here.

    IB (the test gateway) fills a market order at the last trade when it arrives: the signal bar's
    close, so the replay runs with ``fill_model: signal_close``. The target's spike trades through
    the limit: the simulated broker fills a target only then (a touch may not reach an order at the
    back of the queue), the gateway on a touch."""
    start = _script_start()
    run, _ = await _play(tmp_path / "ib", start, {})
    settings = load_settings(None, {**run.env, "QS_EXECUTION__FILL_MODEL": "signal_close"})
    engine = create_engine(store_url(settings))
    try:
        reader = SqlJournalReader(engine)
        daemon_signals = await reader.records_of(SignalRecord, None, None)
        daemon_trips = [r.trip for r in await reader.records_of(RoundTripRecord)]
        series = await load_store_series(
            settings, reader, start, start + timedelta(minutes=len(SCRIPT))
        )
    finally:
        await engine.dispose()
    assert len(series) == len(SCRIPT) * BARS_PER_MINUTE

    replayed = await run_replay(settings, series)
    assert len(daemon_signals) == 6
    assert [_signal_key(s) for s in replayed.journal.signals()] == [
        _signal_key(s) for s in daemon_signals
    ]
    assert len(daemon_trips) == ROUND_TRIPS
    assert replayed.round_trips == daemon_trips


@pytest.mark.timeout(180)
async def test_bars_streamed_while_the_daemon_warms_up_count_once(tmp_path: Path) -> None:
    """A restarted daemon subscribes to the bars before it warms the z-score up from IB's history:
    a strategy bar that completes in between arrives on the stream and is in the history too. It
    must count once: the signal on it is the uninterrupted run's (z -2.99), not one made with its
    close twice in the window."""
    start = _script_start()
    tmp = tmp_path / "ib"
    tmp.mkdir()
    async with TwsGateway() as gateway:
        env = daemon_env(gateway.port, tmp, QS_LOGGING__LEVEL="WARNING")
        run = Run(gateway, tmp, env)
        await run.start()
        try:
            for index in range(10):  # the quiet window
                await run.push(_minute_bars(start + timedelta(minutes=index), SCRIPT[index]))
            await run.kill(Kill(0))
            since = len(gateway.received)
            run.proc = await start_daemon(env, console=run.console)
            await run._until(
                lambda: bool(gateway.realtime_subscriptions), "the subscription", every=0
            )
            assert REQ_HISTORICAL_DATA not in [m for m, _ in gateway.received[since:]]
            signal_bars = _minute_bars(start + timedelta(minutes=10), SCRIPT[10])
            for bar in signal_bars:  # on the stream, before the warm-up asks IB's history
                await gateway.push_bar(gateway.realtime_subscriptions[0].con_id, bar)
                run.pushed += 1
            run.con_id = await wait_started(gateway, run.proc, since, console=run.console)
            await run.settled(signal_bars[-1], boundary=True)
            assert gateway.position(run.con_id) == 1  # entered, as the uninterrupted run
            await run.stop()
        finally:
            if run.proc is not None and run.proc.returncode is None:
                run.proc.kill()
                await run.proc.wait()
    signals = _query(run.data_dir, "SELECT bar_start, close, z, action FROM signals")
    assert [(close, round(float(str(z)), 3), action) for _, close, z, action in signals] == [
        (4990.0, -2.991, "enter")
    ]
