"""The read-only commands: anyone allowed (viewer or operator) may run them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from aiogram import F, Router
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, Message

from application.operator import OperatorConsole, Period
from application.ports import BrokerError, BrokerSnapshot
from entrypoints.settings import Role
from entrypoints.telegram import catalog
from entrypoints.telegram import formatting as fmt
from entrypoints.telegram.middlewares import Audit
from entrypoints.telegram.routers.common import command_filter, is_reset, refuse_arguments, reply

PERIODS: tuple[Period, ...] = ("today", "week", "month")
DEFAULT_TRADES = 5
MAX_TRADES = 50
DEFAULT_CHART_HOURS = 6
MAX_CHART_HOURS = 72


async def show_help(message: Message, role: Role) -> None:
    await reply(message, catalog.help_text(role))


async def show_status(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    if await refuse_arguments(message, command, catalog.STATUS, audit):
        return
    await reply(message, fmt.status_text(console.status(), console.now()))


async def show_pnl(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    word = (command.args or "today").strip().lower()
    period = next((p for p in PERIODS if p == word), None)
    if period is None:
        audit.outcome = "bad arguments"
        await reply(
            message,
            f"Unknown period {command.args!r}: use /pnl today, /pnl week or /pnl month.",
        )
        return
    trips = await console.round_trips(period)
    await reply(message, fmt.pnl_text(period, console.period_start(period), trips))


async def show_trades(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    arg = (command.args or str(DEFAULT_TRADES)).strip()
    count = int(arg) if arg.isdecimal() and len(arg) <= 3 else 0
    if not 1 <= count <= MAX_TRADES:
        audit.outcome = "bad arguments"
        await reply(
            message, f"/trades takes a number of trades from 1 to {MAX_TRADES}, got {arg!r}."
        )
        return
    await reply(message, fmt.trades_text(await console.round_trips(last=count), count))


async def _broker(console: OperatorConsole) -> tuple[BrokerSnapshot | None, str]:
    try:
        return await console.broker(), ""
    except BrokerError as exc:
        return None, str(exc)


async def show_positions(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    if await refuse_arguments(message, command, catalog.POSITIONS, audit):
        return
    snapshot, problem = await _broker(console)
    if snapshot is None:
        audit.outcome = f"broker did not answer: {problem}"
    await reply(message, fmt.positions_text(console.status(), snapshot, problem, console.now()))


async def show_orders(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    if await refuse_arguments(message, command, catalog.ORDERS, audit):
        return
    snapshot, problem = await _broker(console)
    if snapshot is None:
        audit.outcome = f"broker did not answer: {problem}"
    await reply(message, fmt.orders_text(console.status(), snapshot, problem))


async def show_breaker(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    if command.args:
        audit.outcome = "bad arguments"
        await reply(message, "/breaker takes no argument, or 'reset': /breaker reset.")
        return
    await reply(message, fmt.breaker_text(console.status().breaker, console.now()))


async def show_health(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    if await refuse_arguments(message, command, catalog.HEALTH, audit):
        return
    await reply(message, fmt.health_text(console.health()))


async def show_config(
    message: Message,
    command: CommandObject,
    console: OperatorConsole,
    audit: Audit,
    masked_values: tuple[str, ...],
) -> None:
    if await refuse_arguments(message, command, catalog.CONFIG, audit):
        return
    await reply(message, fmt.config_text(console.config(), masked_values))


async def show_chart(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    """Today's equity (the report's equity.png) and the price of the last hours, as photos."""
    # matplotlib is imported on the first /chart, not when the daemon starts.
    from entrypoints.report_output import price_bars_of
    from entrypoints.telegram import charts

    arg = (command.args or str(DEFAULT_CHART_HOURS)).strip()
    hours = int(arg) if arg.isdecimal() and len(arg) <= 3 else 0
    if not 1 <= hours <= MAX_CHART_HOURS:
        audit.outcome = "bad arguments"
        await reply(
            message, f"/chart takes a number of hours from 1 to {MAX_CHART_HOURS}, got {arg!r}."
        )
        return
    today = console.period_start("today")
    since = console.now() - timedelta(hours=hours)
    bars = await console.bars_since(min(today, since))
    trips = await console.round_trips("today")
    net = sum((t.net_pnl for t in trips), Decimal(0))
    caption = (
        f"Equity today (since {fmt.when(today)}): {len(trips)} "
        f"trade{'s' if len(trips) != 1 else ''}, net {fmt.money(net)} USD"
    )
    session = price_bars_of([b for b in bars if b.ts >= today])
    equity = charts.equity_png(trips, session)
    await message.answer_photo(BufferedInputFile(equity, "equity.png"), caption=caption)
    recent = price_bars_of([b for b in bars if b.ts >= since])
    if recent is None:
        await reply(message, f"No bars recorded in the last {hours} h: no price chart.")
        return
    title = f"Price, last {hours} h (since {fmt.when(since)})"
    price = charts.price_png(recent, trips, title)
    await message.answer_photo(BufferedInputFile(price, "price.png"), caption=title)


async def show_version(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit
) -> None:
    if await refuse_arguments(message, command, catalog.VERSION, audit):
        return
    await reply(message, f"quant-scalper {console.version}")


def read_router() -> Router:
    """The read-only commands (the viewer's role)."""
    router = Router(name="read")
    router.message.register(show_help, command_filter("help", "start"), flags=catalog.HELP.flags)
    router.message.register(show_status, command_filter("status"), flags=catalog.STATUS.flags)
    router.message.register(show_pnl, command_filter("pnl"), flags=catalog.PNL.flags)
    router.message.register(show_trades, command_filter("trades"), flags=catalog.TRADES.flags)
    router.message.register(
        show_positions, command_filter("positions"), flags=catalog.POSITIONS.flags
    )
    router.message.register(show_orders, command_filter("orders"), flags=catalog.ORDERS.flags)
    router.message.register(
        show_breaker,
        command_filter("breaker", magic=F.args.func(lambda args: not is_reset(args))),
        flags=catalog.BREAKER.flags,
    )
    router.message.register(show_health, command_filter("health"), flags=catalog.HEALTH.flags)
    router.message.register(show_config, command_filter("config"), flags=catalog.CONFIG.flags)
    router.message.register(show_chart, command_filter("chart"), flags=catalog.CHART.flags)
    router.message.register(show_version, command_filter("version"), flags=catalog.VERSION.flags)
    return router
