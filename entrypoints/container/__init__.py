"""The composition root: the only module that knows dependency_injector and the concrete adapters.

Containers (STYLE.md, "Composition root"):

* ``Core``: the typed Settings (a Dependency) and what is derived from them alone;
* ``SimulatedAdapters`` and ``LiveAdapters``: the ports' adapters under identical provider names;
* ``Services``: the domain objects and the trading service, over a DependenciesContainer of adapters;
* ``Application``: ties the three together.

:func:`build_container` chooses simulated or live explicitly; nothing is built at import time.
"""

from __future__ import annotations

import importlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.log_notifier import LogNotifier
from adapters.private_files import PrivateRotatingFileHandler
from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.market_data import BarSeries, ReplayMarketData, read_bar_file
from adapters.simulated.notifier import RecordingNotifier
from adapters.simulated.repositories import InMemoryJournal
from application.backoff import BackoffPolicy
from application.bar_gate import BarGate
from application.fast_replay import FastReplay
from application.ports import Clock, Journal, ZScoreEngine, ZScoreEngineFactory
from application.services import EventInbox, TradingService
from domain.aggregation import BarAggregator
from domain.calendar import SessionCalendar, build_calendar
from domain.circuit_breaker import RiskLimits
from domain.engine import Engine, EngineConfig, LostLeg, SessionRules, StrategyParams
from domain.price_band import PriceBand
from domain.values import MES, Instrument
from domain.zscore import Threshold
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from adapters.ibkr.backoff import Backoff
    from adapters.ibkr.pacing import PacingLimiter

Mode = Literal["simulated", "live"]

ORDER_KEY_PREFIX = "QS"
"""Every order key (IB ``orderRef``) starts with it: how the bot tells its orders from others."""

_ZSCORE_ENGINES = {
    "rust": ("adapters.zscore.rust", "RustZScoreEngine"),
    "python": ("adapters.zscore.reference", "PythonZScoreEngine"),
}


def zscore_factory(engine: str) -> ZScoreEngineFactory:
    """The engine named by ``zscore.engine``. Imported on demand, so ``python`` never needs the Rust
    extension, and a missing extension under ``rust`` is an error, never a silent fallback."""
    module_name, class_name = _ZSCORE_ENGINES[engine]
    factory: ZScoreEngineFactory = getattr(importlib.import_module(module_name), class_name)
    return factory


def instrument_for(settings: Settings) -> Instrument:
    symbol = settings.instrument.symbol
    if symbol != MES.symbol:  # pragma: no cover - the settings literal admits only MES
        raise ValueError(f"unsupported instrument {symbol}")
    return MES


def price_band_for(settings: Settings) -> PriceBand:
    """The price sanity band of the instrument's settings (domain.price_band)."""
    instrument = settings.instrument
    return PriceBand(
        min_price=float(instrument.min_price),
        max_price=float(instrument.max_price),
        max_jump=float(instrument_for(settings).tick_size * instrument.max_jump_ticks),
    )


def read_bar_file_for(settings: Settings, path: Path, bar_seconds: int | None = None) -> BarSeries:
    """The bar file at ``path`` as the configured instrument allows it: rows off its tick grid,
    outside its price band, or stamped after the wall clock's now are refused and counted.
    Raises ``BarFileError`` (``BarSizeError`` when ``bar_seconds`` disagrees with the file)."""
    return read_bar_file(
        path,
        tick_size=instrument_for(settings).tick_size,
        bar_seconds=bar_seconds,
        band=price_band_for(settings),
        now_epoch=int(time.time()),
    )


def private_log_file(path: Path, max_bytes: int, backups: int) -> logging.Handler:
    """The log file ``path``, rotated at ``max_bytes`` with ``backups`` old files kept; every file
    created 0600 and its directory 0700, whatever the umask (``OSError`` when it cannot be)."""
    return PrivateRotatingFileHandler(path, max_bytes=max_bytes, backups=backups)


def engine_config(settings: Settings, calendar: SessionCalendar) -> EngineConfig:
    """Map validated settings onto the domain's configuration."""
    strategy, risk, session = settings.strategy, settings.risk, settings.session
    flatten = session.flatten_minutes_before_close
    duration = risk.max_position_duration_hours
    return EngineConfig(
        instrument=instrument_for(settings),
        strategy=StrategyParams(
            entry=Threshold(strategy.z_threshold_entry),
            exit=Threshold(strategy.z_threshold_exit),
            min_volume=strategy.min_volume,
        ),
        qty=risk.max_position_size,
        stop_loss_dollars=risk.stop_loss_dollars,
        take_profit_dollars=risk.take_profit_dollars,
        limits=RiskLimits(
            max_daily_loss=risk.max_daily_loss,
            max_consecutive_losses=risk.max_consecutive_losses,
            pause=timedelta(minutes=risk.pause_minutes),
            max_trades_per_day=risk.max_trades_per_day,
            max_rejects_per_day=risk.max_rejects_per_day,
            max_position_duration=(
                timedelta(seconds=float(duration * Decimal(3600))) if duration is not None else None
            ),
        ),
        sessions=SessionRules(
            calendar=calendar,
            no_entry_before_close=timedelta(minutes=session.no_entry_minutes_before_close),
            flatten_before_close=timedelta(minutes=flatten) if flatten is not None else None,
            enabled=session.calendar != "none",
        ),
        key_prefix=ORDER_KEY_PREFIX,
        lost_leg=LostLeg(risk.lost_leg),
    )


def aggregation_calendar(settings: Settings, calendar: SessionCalendar) -> SessionCalendar | None:
    """The calendar bars are cut at: none when session rules are off (nothing to cut at)."""
    return None if settings.session.calendar == "none" else calendar


def _minutes_to_seconds(minutes: int) -> int:
    return minutes * 60


def _make_zscore(factory: ZScoreEngineFactory, window: int) -> ZScoreEngine:
    return factory(window)


class Core(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    instrument = providers.Callable(instrument_for, settings)
    price_band = providers.Callable(price_band_for, settings)
    calendar = providers.Singleton(build_calendar, settings.provided.session.calendar)
    zscore_factory = providers.Callable(zscore_factory, settings.provided.zscore.engine)


class SimulatedAdapters(containers.DeclarativeContainer):
    """Deterministic adapters: replay feed, simulated broker, manual clock, in-memory journal."""

    core = providers.DependenciesContainer()
    bar_source = providers.Dependency(instance_of=BarSeries)
    on_progress: providers.Object[Callable[[int], None] | None] = providers.Object(None)

    inbox = providers.Singleton(EventInbox)
    clock = providers.Singleton(ManualClock)
    market_data = providers.Singleton(ReplayMarketData, bar_source, on_progress=on_progress)
    broker = providers.Singleton(
        SimulatedBroker,
        instrument=core.instrument,
        sink=inbox,
        fill_model=core.settings.provided.execution.fill_model,
        slippage_ticks=core.settings.provided.execution.slippage_ticks,
        commission_per_side=core.settings.provided.execution.commission_per_side,
    )
    journal = providers.Singleton(InMemoryJournal)
    notifier = providers.Singleton(RecordingNotifier)
    bar_listeners = providers.List(clock, broker)


def _margin_check_qty(settings: Settings) -> int | None:
    """One entry's size for the start-up what-if; None where no order may be sent (read-only)."""
    return None if settings.ibkr.readonly else settings.risk.max_position_size


def _outage_reminders(settings: Settings) -> BackoffPolicy:
    """When the operator hears again of an IB Gateway that stays out of reach or silent."""
    ibkr = settings.ibkr
    return BackoffPolicy(initial_s=ibkr.outage_reminder_s, max_s=ibkr.outage_reminder_max_s)


def _ibkr(module: str, name: str) -> Callable[..., Any]:
    """``adapters.ibkr.<module>.<name>``, imported when the provider first builds one: ib_async
    (and the rest of the IB adapter) stays out of the processes that never talk to IB Gateway, a
    replay above all (its start-up time is what a sweep of many replays pays)."""

    def build(*args: Any, **kwargs: Any) -> Any:
        cls = getattr(importlib.import_module(f"adapters.ibkr.{module}"), name)
        return cls(*args, **kwargs)

    build.__qualname__ = build.__name__ = name
    return build


def _pacing_limiter(clock: Clock) -> PacingLimiter:
    """IB's pacing windows, on the daemon's clock (IB's time: an accelerated soak's too)."""
    limiter: PacingLimiter = _ibkr("pacing", "PacingLimiter")(
        lambda: clock.now().timestamp(), clock.sleep
    )
    return limiter


def _backoff(max_s: float, client_id_wait_s: float) -> Backoff:
    backoff: Backoff = _ibkr("backoff", "Backoff")(
        random.Random(), initial_s=min(1.0, max_s), max_s=max_s, client_id_wait_s=client_id_wait_s
    )
    return backoff


class LiveAdapters(containers.DeclarativeContainer):
    """Production adapters: IB Gateway through ib_async for bars, orders and contracts. The journal
    is an unset Dependency: the daemon provides the SQL journal it opened (and tests an in-memory
    one); ``check_dependencies()`` names it instead of anything running half-wired.

    ``dry_run`` True: the broker accepts orders without sending them (signals, journal, alerts)."""

    core = providers.DependenciesContainer()
    inbox = providers.Singleton(EventInbox)
    clock = providers.Singleton(SystemClock)
    notifier = providers.Singleton(LogNotifier)
    journal: providers.Dependency[Journal] = providers.Dependency()
    bar_listeners = providers.List()
    dry_run: providers.Object[bool] = providers.Object(False)

    limiter = providers.Singleton(_pacing_limiter, clock)
    ibkr_client = providers.Singleton(
        _ibkr("client", "IbClient"),
        host=core.settings.provided.ibkr.host,
        port=core.settings.provided.ibkr.port,
        client_id=core.settings.provided.ibkr.client_id,
        account=core.settings.provided.ibkr.account,
        readonly=core.settings.provided.ibkr.readonly,
        connect_timeout_s=core.settings.provided.ibkr.connect_timeout_s,
        request_timeout_s=core.settings.provided.ibkr.request_timeout_s,
        limiter=limiter,
    )
    bar_gate = providers.Singleton(BarGate, core.price_band)
    market_data = providers.Singleton(
        _ibkr("market_data", "IbkrMarketData"),
        client=ibkr_client,
        clock=clock,
        calendar=core.calendar,
        gate=bar_gate,
    )
    broker = providers.Singleton(
        _ibkr("broker", "IbkrBroker"),
        client=ibkr_client,
        sink=inbox,
        instrument=core.instrument,
        clock=clock,
        key_prefix=ORDER_KEY_PREFIX,
        commission_per_contract=core.settings.provided.execution.commission_per_side,
        commission_wait_s=core.settings.provided.ibkr.commission_wait_s,
        dry_run=dry_run,
    )
    contracts = providers.Singleton(
        _ibkr("contracts", "IbkrContractResolver"),
        client=ibkr_client,
        symbol=core.settings.provided.instrument.symbol,
        exchange=core.settings.provided.instrument.exchange,
        currency=core.settings.provided.instrument.currency,
        expiry=core.settings.provided.instrument.expiry,
    )
    watchdog = providers.Singleton(
        _ibkr("staleness", "StaleBarWatchdog"),
        core.calendar,
        grace_s=core.settings.provided.ibkr.stale_grace_s,
    )
    backoff = providers.Singleton(
        _backoff,
        core.settings.provided.ibkr.reconnect_max_s,
        core.settings.provided.ibkr.client_id_wait_s,
    )
    session = providers.Singleton(
        _ibkr("session", "IbkrSession"),
        client=ibkr_client,
        broker=broker,
        market_data=market_data,
        resolver=contracts,
        sink=inbox,
        notifier=notifier,
        clock=clock,
        watchdog=watchdog,
        backoff=backoff,
        watchdog_interval_s=core.settings.provided.ibkr.watchdog_interval_s,
        max_connect_attempts=core.settings.provided.ibkr.startup_attempts,
        heartbeat_interval_s=core.settings.provided.ibkr.heartbeat_s,
        max_clock_skew_s=core.settings.provided.ibkr.max_clock_skew_s,
        reminders=providers.Callable(_outage_reminders, core.settings),
        paper_only=core.settings.provided.ibkr.paper,
        margin_check_qty=providers.Callable(_margin_check_qty, core.settings),
    )


class Services(containers.DeclarativeContainer):
    core = providers.DependenciesContainer()
    adapters = providers.DependenciesContainer()

    engine_config = providers.Callable(engine_config, core.settings, core.calendar)
    engine = providers.Singleton(Engine, engine_config)
    aggregator = providers.Singleton(
        BarAggregator,
        bar_seconds=providers.Callable(
            _minutes_to_seconds, core.settings.provided.strategy.bar_minutes
        ),
        calendar=providers.Callable(aggregation_calendar, core.settings, core.calendar),
    )
    zscore = providers.Singleton(
        _make_zscore, core.zscore_factory, core.settings.provided.strategy.lookback_period
    )
    trading = providers.Singleton(
        TradingService,
        engine=engine,
        aggregator=aggregator,
        zscore=zscore,
        broker=adapters.broker,
        journal=adapters.journal,
        notifier=adapters.notifier,
        inbox=adapters.inbox,
        bar_listeners=adapters.bar_listeners,
    )
    # Replay's runner: the trading service, skipping quiet bars (simulated listeners only).
    fast_replay = providers.Singleton(FastReplay, service=trading, listeners=adapters.bar_listeners)


class Application(containers.DeclarativeContainer):
    core = providers.Container(Core)
    adapters = providers.DependenciesContainer()
    services = providers.Container(Services, core=core, adapters=adapters)


def build_container(
    settings: Settings,
    mode: Mode,
    *,
    bar_source: BarSeries | None = None,
    on_progress: Callable[[int], None] | None = None,
    adapter_overrides: Mapping[str, object] | None = None,
) -> Application:
    """The application container for ``mode``; ``bar_source`` feeds the simulated market data.

    ``adapter_overrides`` provides adapters by provider name (``clock``, ``journal``,
    ``notifier``...) as ready objects, when the container is made.
    """
    core = Core(settings=settings)
    given: dict[str, providers.Provider[Any]] = {
        name: providers.Object(value) for name, value in (adapter_overrides or {}).items()
    }
    adapters: containers.DeclarativeContainer
    if mode == "simulated":
        if bar_source is not None:
            given["bar_source"] = providers.Object(bar_source)
        given["on_progress"] = providers.Object(on_progress)
        kind: type[containers.DeclarativeContainer] = SimulatedAdapters
    elif mode == "live":
        kind = LiveAdapters
    else:
        raise ValueError(f"unknown mode {mode!r}")
    unknown = sorted(
        name for name in given if not isinstance(getattr(kind, name, None), providers.Provider)
    )
    if unknown:
        raise ValueError(f"no adapter named {unknown[0]!r} to provide in {mode} mode")
    # Given at construction, the declarative way: nothing is overridden once the graph exists.
    adapters = kind(core=core, **given)
    return Application(core=core, adapters=adapters)


async def init_resources(container: containers.Container) -> None:
    """``container.init_resources()``, awaited: dependency_injector returns an awaitable only when
    some Resource is asynchronous, so every command's start-up reads the same either way."""
    init = container.init_resources()
    if init is not None:
        await init


async def shutdown_resources(container: containers.Container) -> None:
    """``container.shutdown_resources()``, awaited (see :func:`init_resources`)."""
    shutdown = container.shutdown_resources()
    if shutdown is not None:
        await shutdown
