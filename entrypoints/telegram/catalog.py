"""The bot's commands: usage, the role each needs, and a one-line summary (/help is built here).

Handlers carry their :class:`CommandSpec` as the aiogram flag ``command``; the role middleware reads
it to decide who may run the handler and what to journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from entrypoints.settings import Role

_RANK: Final[dict[Role, int]] = {"viewer": 0, "operator": 1}


def may(role: Role, needed: Role) -> bool:
    """Whether a user with ``role`` may run a command that needs ``needed``."""
    return _RANK[role] >= _RANK[needed]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    usage: str
    role: Role
    summary: str

    @property
    def flags(self) -> dict[str, object]:
        """The aiogram handler flags that mark a handler as this command."""
        return {"command": self}


HELP = CommandSpec("/help", "viewer", "the commands you may use")
STATUS = CommandSpec("/status", "viewer", "state, position, entry gates, last bar")
PNL = CommandSpec("/pnl [today|week|month]", "viewer", "closed-trade P&L (default today)")
TRADES = CommandSpec("/trades [n]", "viewer", "the last n closed trades (default 5, at most 50)")
POSITIONS = CommandSpec("/positions", "viewer", "the engine's position and the broker's")
ORDERS = CommandSpec("/orders", "viewer", "open orders at the broker")
BREAKER = CommandSpec("/breaker", "viewer", "circuit breaker counters and limits")
HEALTH = CommandSpec("/health", "viewer", "broker link, bar age, backlogs")
CONFIG = CommandSpec("/config", "viewer", "the settings the daemon runs with, secrets masked")
CHART = CommandSpec(
    "/chart [hours]",
    "viewer",
    "today's equity and the price of the last hours (default 6) as images",
)
VERSION = CommandSpec("/version", "viewer", "the running version")
PAUSE = CommandSpec("/pause", "operator", "no new entries; an open position keeps its bracket")
RESUME = CommandSpec("/resume", "operator", "allow new entries again")
FLATTEN = CommandSpec(
    "/flatten", "operator", "close the position at market and pause entries (asks to confirm)"
)
STOP = CommandSpec("/stop", "operator", "stop the daemon (asks to confirm, and whether to flatten)")
RECONCILE = CommandSpec("/reconcile", "operator", "compare the broker's position with the engine's")
BREAKER_RESET = CommandSpec(
    "/breaker reset", "operator", "lift the breaker's halts and pause (asks to confirm)"
)
UNKNOWN = CommandSpec("/<unknown>", "viewer", "a command the bot does not have")
BUTTON = CommandSpec("button", "operator", "a confirmation button")
STALE_BUTTON = CommandSpec("button", "viewer", "a button the bot no longer knows")

COMMANDS: Final[tuple[CommandSpec, ...]] = (
    HELP,
    STATUS,
    PNL,
    TRADES,
    POSITIONS,
    ORDERS,
    BREAKER,
    HEALTH,
    CONFIG,
    CHART,
    VERSION,
    PAUSE,
    RESUME,
    FLATTEN,
    STOP,
    RECONCILE,
    BREAKER_RESET,
)
"""Every command /help lists, in the order it lists them."""


def menu() -> list[tuple[str, str]]:
    """(command, description) for Telegram's command menu: one entry per command word."""
    seen: dict[str, str] = {}
    for spec in COMMANDS:
        name = spec.usage.split()[0].removeprefix("/")
        seen.setdefault(name, spec.summary)
    return list(seen.items())


def help_text(role: Role) -> str:
    lines = [f"{spec.usage} - {spec.summary}" for spec in COMMANDS if may(role, spec.role)]
    if role == "viewer":
        lines.append("You are a viewer: commands that trade or stop the bot need an operator.")
    return "\n".join(lines)
