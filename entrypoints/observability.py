"""``GET /healthz`` (JSON) and ``GET /metrics`` (Prometheus text format) on 127.0.0.1.

The numbers come from the operator console (health, engine status, breaker) and the trading
service's counters; nothing here computes trading facts of its own. The Prometheus exposition format
is written by hand: a dozen gauges and counters do not need a client library.
"""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from application.operator import OperatorConsole
from application.services import TradingService
from entrypoints.startup import EXIT_UNAVAILABLE, StartupError


@dataclass(frozen=True)
class Extra:
    """Counters the console does not carry (the broker link's reconnects, say)."""

    reconnects: Callable[[], int] = lambda: 0
    notices: Callable[[], Mapping[str, int]] = dict


def health_json(console: OperatorConsole) -> dict[str, object]:
    health = console.health()
    return {
        "status": health.status,
        "state": health.state,
        "position": health.position,
        "connected": health.connected,
        "last_bar_age_s": health.last_bar_age_s,
        "journal_backlog": health.journal_backlog,
        "alert_backlog": health.alert_backlog,
        "problems": list(health.problems),
    }


def render_metrics(console: OperatorConsole, service: TradingService, extra: Extra) -> str:
    """The metrics in Prometheus' text exposition format (version 0.0.4)."""
    health = console.health()
    status = console.status()
    breaker = status.breaker
    counters = service.counters
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, value: float, labels: str = "") -> None:
        lines.append(f"# HELP qs_{name} {help_}")
        lines.append(f"# TYPE qs_{name} {kind}")
        lines.append(f"qs_{name}{labels} {value}")

    metric("up", "gauge", "1 while the daemon runs.", 1)
    metric("broker_connected", "gauge", "1 while the broker link is up.", int(health.connected))
    metric(
        "last_bar_age_seconds",
        "gauge",
        "Seconds since the last market bar ended (-1 before the first).",
        -1 if health.last_bar_age_s is None else round(health.last_bar_age_s, 3),
    )
    metric("position_contracts", "gauge", "Signed position held (contracts).", health.position)
    metric(
        "session_realized_pnl_usd",
        "gauge",
        "Realized P&L of the current CME session, net of commissions.",
        float(breaker.realized_pnl),
    )
    metric("session_trades", "gauge", "Entries in the current session.", breaker.trades_today)
    metric("loss_streak", "gauge", "Losing trades in a row.", breaker.loss_streak)
    metric(
        "breaker_halted",
        "gauge",
        "1 while the daily-loss breaker halts entries.",
        int(breaker.daily_loss_halt),
    )
    metric("paused", "gauge", "1 while an operator paused entries.", int(status.paused))
    metric(
        "entries_blocked",
        "gauge",
        "1 while new entries are refused for any reason.",
        int(status.entry_blocker is not None),
    )
    metric("orders_total", "counter", "Orders handed to the broker.", counters.orders_sent)
    metric("rejections_total", "counter", "Orders the broker refused.", counters.rejections)
    metric("broker_errors_total", "counter", "Broker calls that failed.", counters.broker_errors)
    metric("reconnects_total", "counter", "Reconnections to the broker.", extra.reconnects())
    notices = sorted(extra.notices().items())
    if notices:
        lines.append(
            "# HELP qs_broker_notices_total The broker's error codes and notices seen, by class "
            '(class="unknown": codes not in the table).'
        )
        lines.append("# TYPE qs_broker_notices_total counter")
        lines.extend(f'qs_broker_notices_total{{class="{c}"}} {n}' for c, n in notices)
    metric("bars_total", "counter", "Market bars processed.", counters.bars_in)
    metric("journal_backlog", "gauge", "Journal records not yet durable.", health.journal_backlog)
    metric("alert_backlog", "gauge", "Alerts waiting to be sent.", health.alert_backlog)
    return "\n".join(lines) + "\n"


def build_app(
    console: OperatorConsole, service: TradingService, extra: Extra | None = None
) -> web.Application:
    extra = extra or Extra()

    async def healthz(_: web.Request) -> web.Response:
        body = health_json(console)
        # 503 when the daemon cannot trade, so a supervisor's probe sees it without parsing.
        return web.json_response(
            body, status=503 if body["status"] == "down" else 200, dumps=json.dumps
        )

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            text=render_metrics(console, service, extra),
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def check_port(host: str, port: int, setting: str, what: str) -> None:
    """Raise the :class:`StartupError` :func:`serve` would (exit 4, naming ``setting``) when
    ``host:port`` cannot be listened on now: a server opened the way aiohttp's opens its own
    (same address resolution and socket options), then closed at once."""
    try:
        probe = await asyncio.get_running_loop().create_server(asyncio.Protocol, host, port)
    except OSError as exc:
        raise port_error(exc, host, port, setting, what) from None
    probe.close()
    await probe.wait_closed()


def port_error(exc: OSError, host: str, port: int, setting: str, what: str) -> StartupError:
    why = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        why = "the port is in use (another daemon, or another program)"
    return StartupError(
        f"{setting} {port}: cannot {what} on {host}:{port}: {why}", EXIT_UNAVAILABLE
    )


async def serve(
    console: OperatorConsole,
    service: TradingService,
    *,
    port: int,
    host: str = "127.0.0.1",
    extra: Extra | None = None,
) -> web.AppRunner:
    """Start serving; ``await runner.cleanup()`` stops. A port that cannot be listened on (in use,
    not permitted) is a :class:`StartupError` naming ``observability.port`` (exit 4), never an
    OSError that a caller could take for a database error."""
    runner = web.AppRunner(build_app(console, service, extra), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise port_error(exc, host, port, "observability.port", "serve /healthz") from None
    return runner


class EndpointsChannel:
    """``/healthz`` and ``/metrics`` as one of the daemon's channels (none without
    ``observability.port``)."""

    def __init__(
        self,
        port: int | None,
        service: TradingService,
        reconnects: Callable[[], int],
        notices: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self._port = port
        self._service = service
        self._extra = Extra(reconnects=reconnects, notices=notices)
        self._runner: web.AppRunner | None = None

    async def check(self) -> None:
        if self._port is not None:
            await check_port("127.0.0.1", self._port, "observability.port", "serve /healthz")

    async def serve(self, console: OperatorConsole) -> None:
        if self._port is not None:
            self._runner = await serve(console, self._service, port=self._port, extra=self._extra)

    def backlog(self) -> int:
        return 0

    async def close(self, timeout: float = 5.0) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
