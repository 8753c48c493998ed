"""The confirmation buttons of /flatten, /stop and /breaker reset.

A press is checked against the :class:`ConfirmationBook`: only the asker, only before the
deadline, only once, and only while the position and orders (or the breaker) are still what the
question described: otherwise nothing is done and the operator is asked to send the command again.
The question is then edited to say what happened (its buttons go with the edit), and the press is
answered so the client stops waiting.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from application.operator import OperatorConsole
from entrypoints.telegram import catalog
from entrypoints.telegram import formatting as fmt
from entrypoints.telegram.confirmations import (
    Choice,
    ConfirmationBook,
    ConfirmButton,
    Pending,
    Verdict,
)
from entrypoints.telegram.middlewares import Audit, operator_id


async def _settle(query: CallbackQuery, text: str, answer: str) -> None:
    """Replace the question (and its buttons) by ``text``; answer the press with ``answer``."""
    await query.answer(answer)
    if isinstance(query.message, Message):  # not an inaccessible (too old) message
        await query.message.edit_text(text)


async def on_button(
    query: CallbackQuery,
    callback_data: ConfirmButton,
    console: OperatorConsole,
    confirmations: ConfirmationBook,
    audit: Audit,
    by: str,
) -> None:
    choice = callback_data.choice
    claim = confirmations.claim(callback_data.id, query.from_user.id, choice)
    pending = claim.pending
    if claim.verdict is Verdict.UNKNOWN or pending is None:
        audit.command = "button"
        audit.refuse("already answered, or no longer valid")
        await query.answer("Already answered, or no longer valid: nothing done.")
        return
    audit.command = f"{pending.command} {choice.label.lower()}"
    if claim.verdict is Verdict.NOT_YOURS:
        audit.refuse(f"not the requester ({operator_id(pending.user_id)} asked)")
        await query.answer("Only the person who asked can answer this.", show_alert=True)
        return
    if claim.verdict is Verdict.EXPIRED:
        audit.refuse("expired; nothing done")
        lasted = fmt.duration(confirmations.timeout)
        await _settle(
            query,
            f"Expired: {pending.command} was not done (the buttons last {lasted}).",
            "Expired: nothing done.",
        )
        return
    if choice is Choice.CANCEL:
        audit.outcome = "cancelled"
        await _settle(query, f"Cancelled: {pending.command} was not done.", "Cancelled.")
        return
    # Checked with no await before the engine acts: what is carried out is what was described.
    now = subject_of(console, pending)
    if now != pending.subject:
        audit.refuse(f"changed since asked ({pending.subject} -> {now}); nothing done")
        what = "circuit breaker" if pending.action == "breaker_reset" else "position"
        await _settle(
            query,
            f"Not done: the {what} changed since you asked "
            f"({fmt.position_line(console.status().position)} now). "
            f"Send {pending.command} again to act on what is there now.",
            "Changed since you asked: nothing done.",
        )
        return
    await _carry_out(query, pending, choice, console, audit, by)


def subject_of(console: OperatorConsole, pending: Pending) -> str:
    """What ``pending``'s question would describe now."""
    if pending.action == "breaker_reset":
        return console.breaker_subject()
    return console.position_subject()


async def _carry_out(
    query: CallbackQuery,
    pending: Pending,
    choice: Choice,
    console: OperatorConsole,
    audit: Audit,
    by: str,
) -> None:
    if pending.action == "flatten":
        await console.flatten(by, pause=True)
        status = console.status()
        audit.outcome = f"flatten sent; state {status.state.value}; entries paused"
        await _settle(
            query,
            f"Flatten sent: state {status.state.value}, {fmt.position_line(status.position)}. "
            "New entries are paused; /resume allows them again.",
            "Flatten sent.",
        )
    elif pending.action == "breaker_reset":
        await console.reset_breaker(by)
        entries = fmt.entries_line(console.status())
        audit.outcome = f"breaker reset; entries {entries}"
        await _settle(query, f"Circuit breaker reset. Entries: {entries}.", "Breaker reset.")
    else:
        keep = choice is Choice.STOP_KEEP_BRACKET
        how = "the position stays, its bracket working at the broker" if keep else "flat first"
        audit.outcome = f"stopping, {how}"
        # Stopping may end this process: the journal line goes first. The stop is asked for before
        # anything is awaited, so it applies to the position the question described.
        audit.write()
        await console.stop(by, flatten=not keep)
        await _settle(query, f"Stopping the daemon: {how}.", "Stopping.")


async def stale_button(query: CallbackQuery, audit: Audit) -> None:
    audit.refuse("not a button this bot knows")
    await query.answer("This button is no longer valid: nothing done.")


def confirm_router() -> Router:
    """The confirmation buttons, and an answer for any other button pressed."""
    router = Router(name="confirm")
    router.callback_query.register(on_button, ConfirmButton.filter(), flags=catalog.BUTTON.flags)
    router.callback_query.register(stale_button, flags=catalog.STALE_BUTTON.flags)
    return router
