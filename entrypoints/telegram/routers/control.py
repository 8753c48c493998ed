"""The operator's commands. /pause, /resume and /reconcile act at once; /flatten, /stop and
/breaker reset only ask, with buttons that :mod:`entrypoints.telegram.routers.confirm` answers."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from application.operator import OperatorConsole
from domain.engine import EngineState
from entrypoints.telegram import catalog
from entrypoints.telegram import formatting as fmt
from entrypoints.telegram.confirmations import (
    Action,
    Choice,
    ConfirmationBook,
    ConfirmButton,
    Pending,
)
from entrypoints.telegram.middlewares import Audit
from entrypoints.telegram.routers.common import (
    command_filter,
    is_reset,
    refuse_arguments,
    reply,
)

ASKED = "asked to confirm"


def keyboard(pending: Pending) -> InlineKeyboardMarkup:
    """One button per choice; the three-way /stop question gets a row each."""
    builder = InlineKeyboardBuilder()
    for choice in pending.choices:
        builder.button(text=choice.label, callback_data=ConfirmButton(id=pending.id, choice=choice))
    builder.adjust(2 if len(pending.choices) == 2 else 1)
    return builder.as_markup()


async def _ask(
    message: Message,
    confirmations: ConfirmationBook,
    action: Action,
    choices: tuple[Choice, ...],
    question: str,
    audit: Audit,
    subject: str,
) -> None:
    user = message.from_user
    assert user is not None  # the access gate lets no message without a sender through
    pending = confirmations.open(action, user.id, choices, subject)
    audit.outcome = ASKED
    expiry = fmt.duration(confirmations.timeout)
    await message.answer(
        f"{question}\nOnly you can answer; the buttons expire in {expiry}.",
        reply_markup=keyboard(pending),
    )


async def pause(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit, by: str
) -> None:
    if await refuse_arguments(message, command, catalog.PAUSE, audit):
        return
    await console.pause(by)
    status = console.status()
    audit.outcome = "entries paused"
    held = (
        f" The open position ({fmt.position_line(status.position)}) keeps its bracket."
        if status.position is not None
        else ""
    )
    await reply(message, f"Paused: no new entries.{held} /resume allows them again.")


async def resume(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit, by: str
) -> None:
    if await refuse_arguments(message, command, catalog.RESUME, audit):
        return
    await console.resume(by)
    status = console.status()
    entries = fmt.entries_line(status)
    audit.outcome = f"entries {entries}"
    await reply(message, f"Resumed. Entries: {entries}.")


async def reconcile(
    message: Message, command: CommandObject, console: OperatorConsole, audit: Audit, by: str
) -> None:
    if await refuse_arguments(message, command, catalog.RECONCILE, audit):
        return
    answer = await console.reconcile(by)
    status = console.status()
    audit.outcome = answer
    verdict = (
        f"Reconcile still required: {status.reconcile_required}"
        if status.reconcile_required is not None
        else f"The engine agrees: {fmt.position_line(status.position)}."
    )
    await reply(message, f"Reconcile: {answer}.\n{verdict}")


async def flatten(
    message: Message,
    command: CommandObject,
    console: OperatorConsole,
    confirmations: ConfirmationBook,
    audit: Audit,
) -> None:
    if await refuse_arguments(message, command, catalog.FLATTEN, audit):
        return
    status = console.status()
    if status.state is EngineState.IDLE:
        audit.outcome = "nothing to flatten"
        await reply(
            message, "Nothing to flatten: the engine is flat. /positions compares with the broker."
        )
        return
    what = (
        f"close the {fmt.position_line(status.position, since=False)} at market"
        if status.position is not None
        else f"cancel the working entry ({status.state.value})"
    )
    await _ask(
        message,
        confirmations,
        "flatten",
        (Choice.CONFIRM, Choice.CANCEL),
        f"Flatten: {what}, and pause new entries?",
        audit,
        console.position_subject(),
    )


async def stop(
    message: Message,
    command: CommandObject,
    console: OperatorConsole,
    confirmations: ConfirmationBook,
    audit: Audit,
) -> None:
    if await refuse_arguments(message, command, catalog.STOP, audit):
        return
    status = console.status()
    if status.position is not None:
        await _ask(
            message,
            confirmations,
            "stop",
            (Choice.FLATTEN_AND_STOP, Choice.STOP_KEEP_BRACKET, Choice.CANCEL),
            f"Stop the daemon? A position is open: {fmt.position_line(status.position, since=False)}. "
            "Flatten it first, or stop and leave its bracket working at the broker?",
            audit,
            console.position_subject(),
        )
        return
    await _ask(
        message,
        confirmations,
        "stop",
        (Choice.CONFIRM, Choice.CANCEL),
        f"Stop the daemon? No position is open (state {status.state.value}).",
        audit,
        console.position_subject(),
    )


async def breaker_reset(
    message: Message,
    console: OperatorConsole,
    confirmations: ConfirmationBook,
    audit: Audit,
) -> None:
    trips = fmt.breaker_trips(console.status().breaker, console.now())
    holding = f"it now holds: {', '.join(trips)}" if trips else "nothing is tripped now"
    await _ask(
        message,
        confirmations,
        "breaker_reset",
        (Choice.CONFIRM, Choice.CANCEL),
        f"Reset the circuit breaker ({holding})? Today's P&L and trade count stay.",
        audit,
        console.breaker_subject(),
    )


def control_router() -> Router:
    """The operator's commands."""
    router = Router(name="control")
    router.message.register(pause, command_filter("pause"), flags=catalog.PAUSE.flags)
    router.message.register(resume, command_filter("resume"), flags=catalog.RESUME.flags)
    router.message.register(reconcile, command_filter("reconcile"), flags=catalog.RECONCILE.flags)
    router.message.register(flatten, command_filter("flatten"), flags=catalog.FLATTEN.flags)
    router.message.register(stop, command_filter("stop"), flags=catalog.STOP.flags)
    router.message.register(
        breaker_reset,
        command_filter("breaker", magic=F.args.func(is_reset)),
        flags=catalog.BREAKER_RESET.flags,
    )
    return router
