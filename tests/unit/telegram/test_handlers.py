"""Every command for an operator, a viewer and a stranger; confirmations; journaling; arguments.

Handlers run through ``Dispatcher.feed_update`` on a real OperatorConsole over the simulated
trading stack (see conftest.py); what the bot said is read from the fake Bot API server.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.engine import EngineState
from tests.support.bot_api import EditedMessage
from tests.support.builders import T0, bar, z
from tests.support.trading_desk import DB_PASSWORD, VERSION
from tests.unit.telegram.conftest import (
    GROUP,
    OPERATOR,
    OPERATOR_2,
    OTHER_GROUP,
    STRANGER,
    TIMEOUT_S,
    VIEWER,
    Chat,
    labels,
    texts,
)

BY_OPERATOR = f"telegram:{OPERATOR}"
BY_VIEWER = f"telegram:{VIEWER}"
BY_STRANGER = f"telegram:{STRANGER}"

READ_COMMANDS = [
    ("/help", "/status - state, position, entry gates, last bar"),
    ("/start", "/status - state, position, entry gates, last bar"),
    ("/status", "State IDLE · flat"),
    ("/pnl", "No closed trades today (since 2025-03-03 23:00 UTC)."),
    ("/pnl week", "No closed trades this week (since 2025-03-02 23:00 UTC)."),
    # March 2025 begins on a Saturday: its first session opened Sunday the 2nd, 18:00 New York.
    ("/pnl month", "No closed trades this month (since 2025-03-02 23:00 UTC)."),
    ("/trades", "No closed trades yet."),
    ("/trades 3", "No closed trades yet."),
    ("/positions", "Broker: +0 contracts\nThey agree."),
    ("/orders", "No open orders at the broker."),
    ("/breaker", "Circuit breaker: ok"),
    ("/health", "Health: ok · state IDLE · position +0"),
    ("/config", "telegram\n  enabled: true\n  token: **********"),
    ("/version", f"quant-scalper {VERSION}"),
]
OPERATOR_COMMANDS = ["/pause", "/resume", "/flatten", "/stop", "/reconcile", "/breaker reset"]
ALL_COMMANDS = [command for command, _ in READ_COMMANDS] + OPERATOR_COMMANDS


# ------------------------------------------------------------------ who may do what


@pytest.mark.parametrize("user", [VIEWER, OPERATOR])
@pytest.mark.parametrize(("command", "expected"), READ_COMMANDS)
async def test_read_commands_answer_viewers_and_operators(
    chat: Chat, user: int, command: str, expected: str
) -> None:
    sent = await chat.send(user, command)

    assert len(sent) == 1
    assert sent[0].chat_id == user
    assert expected in sent[0].text
    assert sent[0].parse_mode is None
    assert chat.desk.telegram_commands() == [(command, f"telegram:{user}", "allowed")]


@pytest.mark.parametrize("command", OPERATOR_COMMANDS)
async def test_a_viewer_is_refused_every_operator_command_and_nothing_happens(
    chat: Chat, command: str
) -> None:
    await chat.desk.open_long()

    sent = await chat.send(VIEWER, command)

    assert texts(sent) == [f"{command} needs the operator role; you are a viewer."]
    assert sent[0].reply_markup is None
    status = chat.desk.console.status()
    assert (status.state, status.paused, chat.desk.stops) == (EngineState.LONG, False, [])
    assert chat.desk.telegram_commands() == [
        (command, BY_VIEWER, "refused: needs the operator role; user is a viewer")
    ]
    assert [r.command for r in chat.desk.commands()] == [command]  # the engine was not asked


async def test_a_stranger_gets_one_refusal_whatever_they_send_and_every_try_is_journaled(
    chat: Chat,
) -> None:
    await chat.desk.open_long()

    sent = [m for command in ALL_COMMANDS for m in await chat.send(STRANGER, command)]
    sent += await chat.send(STRANGER, "hello?")

    assert [(m.chat_id, m.text) for m in sent] == [(STRANGER, "Not authorised.")]
    assert chat.desk.telegram_commands() == [
        (command, BY_STRANGER, "refused: not authorised") for command in ALL_COMMANDS
    ]
    status = chat.desk.console.status()
    assert (status.state, status.paused, chat.desk.stops) == (EngineState.LONG, False, [])


async def test_a_stranger_in_a_group_is_ignored_when_chatting_and_refused_once_for_commands(
    chat: Chat,
) -> None:
    chatter = await chat.send(STRANGER, "what is this bot?", chat=GROUP)
    first = await chat.send(STRANGER, "/pause", chat=GROUP)
    again = await chat.send(STRANGER, "/status", chat=GROUP)

    assert (chatter, again) == ([], [])
    assert [(m.chat_id, m.text) for m in first] == [(GROUP, "Not authorised.")]
    assert chat.desk.telegram_commands() == [
        ("/pause", BY_STRANGER, "refused: not authorised"),
        ("/status", BY_STRANGER, "refused: not authorised"),
    ]
    assert chat.desk.console.status().paused is False


async def test_an_operator_in_a_group_not_allowed_is_not_answered_there(chat: Chat) -> None:
    sent = await chat.send(OPERATOR, "/status@qs_test_bot", chat=OTHER_GROUP)
    sent += await chat.send(OPERATOR, "/pause", chat=OTHER_GROUP)
    sent += await chat.send(OPERATOR, "good morning", chat=OTHER_GROUP)
    sent += await chat.send(OPERATOR, "/status@other_bot", chat=OTHER_GROUP)

    assert sent == []
    refused = f"refused: group chat {OTHER_GROUP} not in telegram.group_chats: not answered"
    assert chat.desk.telegram_commands() == [
        ("/status", BY_OPERATOR, refused),
        ("/pause", BY_OPERATOR, refused),
    ]
    assert chat.desk.console.status().paused is False


async def test_an_operator_in_an_allowed_group_is_answered_in_the_group(chat: Chat) -> None:
    sent = await chat.send(OPERATOR, "/status@qs_test_bot", chat=GROUP)

    assert [m.chat_id for m in sent] == [GROUP]
    assert sent[0].text.startswith("State IDLE · flat")
    assert chat.desk.telegram_commands() == [("/status", BY_OPERATOR, "allowed")]


async def test_commands_for_another_bot_in_a_group_are_left_alone(chat: Chat) -> None:
    sent = await chat.send(OPERATOR, "/status@other_bot", chat=GROUP)
    sent += await chat.send(OPERATOR, "/frobnicate@other_bot", chat=GROUP)

    assert sent == []
    assert chat.desk.telegram_commands() == []


async def test_help_lists_what_the_role_may_use(chat: Chat) -> None:
    viewer = (await chat.send(VIEWER, "/help"))[0].text
    operator = (await chat.send(OPERATOR, "/help"))[0].text

    assert "/pause" not in viewer
    assert "/breaker reset" not in viewer
    assert viewer.endswith(
        "You are a viewer: commands that trade or stop the bot need an operator."
    )
    for usage in ("/pause", "/resume", "/flatten", "/stop", "/reconcile", "/breaker reset"):
        assert f"\n{usage} - " in operator
    assert "You are a viewer" not in operator


async def test_commands_are_case_insensitive_and_unknown_ones_get_one_line(chat: Chat) -> None:
    status = await chat.send(OPERATOR, "/STATUS")
    unknown = await chat.send(VIEWER, "/selfdestruct now")

    assert status[0].text.startswith("State IDLE")
    assert texts(unknown) == ["Unknown command /selfdestruct: /help lists the commands."]
    assert chat.desk.telegram_commands() == [
        ("/status", BY_OPERATOR, "allowed"),
        ("/selfdestruct now", BY_VIEWER, "allowed: unknown command"),
    ]


# ------------------------------------------------------------------ the operator's direct commands


async def test_pause_stops_entries_and_resume_allows_them_again(chat: Chat) -> None:
    await chat.desk.open_long()

    paused = await chat.send(OPERATOR, "/pause")
    assert chat.desk.console.status().paused is True
    resumed = await chat.send(OPERATOR, "/resume")

    assert chat.desk.console.status().paused is False
    assert texts(paused) == [
        "Paused: no new entries. The open position (long 1 @ 5,000.00 since 2025-03-04 "
        "15:05 UTC) keeps its bracket. /resume allows them again."
    ]
    assert texts(resumed) == ["Resumed. Entries: open."]
    assert [(r.command, r.by, r.outcome) for r in chat.desk.commands()] == [
        ("pause", BY_OPERATOR, "entries paused"),  # the engine's own record of the act
        ("/pause", BY_OPERATOR, "allowed: entries paused"),
        ("resume", BY_OPERATOR, "entries resumed"),
        ("/resume", BY_OPERATOR, "allowed: entries open"),
    ]


async def test_reconcile_reports_what_the_broker_holds(chat: Chat) -> None:
    await chat.desk.open_long()

    sent = await chat.send(OPERATOR, "/reconcile")

    assert texts(sent) == [
        "Reconcile: broker reports 1.\n"
        "The engine agrees: long 1 @ 5,000.00 since 2025-03-04 15:05 UTC."
    ]
    assert ("/reconcile", BY_OPERATOR, "allowed: broker reports 1") in (
        chat.desk.telegram_commands()
    )


async def test_flatten_when_flat_says_so_and_asks_nothing(chat: Chat) -> None:
    sent = await chat.send(OPERATOR, "/flatten")

    assert texts(sent) == [
        "Nothing to flatten: the engine is flat. /positions compares with the broker."
    ]
    assert sent[0].reply_markup is None
    assert chat.desk.telegram_commands() == [
        ("/flatten", BY_OPERATOR, "allowed: nothing to flatten")
    ]


# ------------------------------------------------------------------ confirmations


async def test_flatten_asks_and_the_askers_confirm_exits_and_pauses(chat: Chat) -> None:
    await chat.desk.open_long()

    [prompt] = await chat.send(OPERATOR, "/flatten")
    assert chat.desk.console.status().state is EngineState.LONG  # asking changes nothing
    edits, answers = await chat.press(OPERATOR, prompt, "Confirm")

    assert prompt.text == (
        "Flatten: close the long 1 @ 5,000.00 at market, and pause new entries?\n"
        "Only you can answer; the buttons expire in 1 min."
    )
    assert labels(prompt) == [["Confirm", "Cancel"]]
    status = chat.desk.console.status()
    assert (status.state, status.paused) == (EngineState.EXITING_LONG, True)
    assert [(e.message_id, e.text, e.reply_markup) for e in edits] == [
        (
            prompt.message_id,
            "Flatten sent: state EXITING_LONG, long 1 @ 5,000.00 since 2025-03-04 15:05 UTC. "
            "New entries are paused; /resume allows them again.",
            None,
        )
    ]
    assert [(a.text, a.show_alert) for a in answers] == [("Flatten sent.", False)]
    assert [(r.command, r.by, r.outcome) for r in chat.desk.commands()] == [
        ("/flatten", BY_OPERATOR, "allowed: asked to confirm"),
        ("flatten", BY_OPERATOR, "exit placed"),
        (
            "/flatten confirm",
            BY_OPERATOR,
            "allowed: flatten sent; state EXITING_LONG; entries paused",
        ),
    ]


async def test_cancel_does_nothing_and_says_so(chat: Chat) -> None:
    await chat.desk.open_long()

    [prompt] = await chat.send(OPERATOR, "/flatten")
    edits, answers = await chat.press(OPERATOR, prompt, "Cancel")

    assert chat.desk.console.status().state is EngineState.LONG
    assert texts_of(edits) == ["Cancelled: /flatten was not done."]
    assert [a.text for a in answers] == ["Cancelled."]
    assert chat.desk.telegram_commands()[-1] == (
        "/flatten cancel",
        BY_OPERATOR,
        "allowed: cancelled",
    )


@pytest.mark.parametrize(("elapsed_s", "expired"), [(TIMEOUT_S - 1, False), (TIMEOUT_S, True)])
async def test_buttons_expire_after_the_timeout_on_the_injected_clock(
    chat: Chat, elapsed_s: int, expired: bool
) -> None:
    await chat.desk.open_long()

    [prompt] = await chat.send(OPERATOR, "/flatten")
    chat.desk.clock.advance(timedelta(seconds=elapsed_s))
    edits, answers = await chat.press(OPERATOR, prompt, "Confirm")

    if expired:
        assert chat.desk.console.status().state is EngineState.LONG
        assert texts_of(edits) == ["Expired: /flatten was not done (the buttons last 1 min)."]
        assert [a.text for a in answers] == ["Expired: nothing done."]
        assert chat.desk.telegram_commands()[-1] == (
            "/flatten confirm",
            BY_OPERATOR,
            "refused: expired; nothing done",
        )
    else:
        assert chat.desk.console.status().state is EngineState.EXITING_LONG
        assert texts_of(edits)[0].startswith("Flatten sent")


async def test_only_the_asker_can_press_others_are_refused_and_nothing_is_done(
    chat: Chat,
) -> None:
    await chat.desk.open_long()
    [prompt] = await chat.send(OPERATOR, "/flatten", chat=GROUP)

    other_edits, other_answers = await chat.press(OPERATOR_2, prompt, "Confirm")
    viewer_edits, viewer_answers = await chat.press(VIEWER, prompt, "Confirm")
    assert chat.desk.console.status().state is EngineState.LONG
    # The question still stands for the one who asked.
    edits, _ = await chat.press(OPERATOR, prompt, "Confirm")

    assert (other_edits, viewer_edits) == ([], [])
    assert [(a.text, a.show_alert) for a in other_answers + viewer_answers] == [
        ("Only the person who asked can answer this.", True),
        ("Only an operator can answer this.", True),
    ]
    assert chat.desk.console.status().state is EngineState.EXITING_LONG
    assert texts_of(edits)[0].startswith("Flatten sent")
    assert chat.desk.telegram_commands()[1:3] == [
        (
            "/flatten confirm",
            f"telegram:{OPERATOR_2}",
            f"refused: not the requester ({BY_OPERATOR} asked)",
        ),
        ("button", BY_VIEWER, "refused: needs the operator role; user is a viewer"),
    ]


async def test_a_stranger_pressing_a_button_is_refused(chat: Chat) -> None:
    await chat.desk.open_long()
    [prompt] = await chat.send(OPERATOR, "/flatten", chat=GROUP)

    edits, answers = await chat.press(STRANGER, prompt, "Confirm")

    assert edits == []
    assert [a.text for a in answers] == ["Not authorised."]
    assert chat.desk.console.status().state is EngineState.LONG
    assert chat.desk.telegram_commands()[-1] == ("button", BY_STRANGER, "refused: not authorised")


@pytest.mark.parametrize(("first", "second"), [("Confirm", "Confirm"), ("Cancel", "Confirm")])
async def test_a_second_press_does_nothing(chat: Chat, first: str, second: str) -> None:
    await chat.desk.open_long()
    [prompt] = await chat.send(OPERATOR, "/flatten")

    await chat.press(OPERATOR, prompt, first)
    state = chat.desk.console.status().state
    edits, answers = await chat.press(OPERATOR, prompt, second)

    assert edits == []
    assert [a.text for a in answers] == ["Already answered, or no longer valid: nothing done."]
    assert chat.desk.console.status().state is state
    engine_flattens = [r for r in chat.desk.commands() if r.command == "flatten"]
    assert len(engine_flattens) == (1 if first == "Confirm" else 0)
    assert chat.desk.telegram_commands()[-1] == (
        "button",
        BY_OPERATOR,
        "refused: already answered, or no longer valid",
    )


@pytest.mark.parametrize(
    ("label", "stops", "outcome"),
    [
        ("Flatten and stop", [True], "allowed: stopping, flat first"),
        (
            "Stop, keep the bracket",
            [False],
            "allowed: stopping, the position stays, its bracket working at the broker",
        ),
        ("Cancel", [], "allowed: cancelled"),
    ],
)
async def test_stop_with_a_position_asks_whether_to_flatten_first(
    chat: Chat, label: str, stops: list[bool], outcome: str
) -> None:
    await chat.desk.open_long()

    [prompt] = await chat.send(OPERATOR, "/stop")
    assert chat.desk.stops == []
    await chat.press(OPERATOR, prompt, label)

    assert labels(prompt) == [["Flatten and stop"], ["Stop, keep the bracket"], ["Cancel"]]
    assert "A position is open: long 1 @ 5,000.00." in prompt.text
    assert chat.desk.stops == stops
    assert chat.desk.telegram_commands()[-1] == (f"/stop {label.lower()}", BY_OPERATOR, outcome)


async def test_stop_when_flat_asks_a_plain_confirmation(chat: Chat) -> None:
    [prompt] = await chat.send(OPERATOR, "/stop")
    edits, _ = await chat.press(OPERATOR, prompt, "Confirm")

    assert labels(prompt) == [["Confirm", "Cancel"]]
    assert prompt.text.startswith("Stop the daemon? No position is open (state IDLE).")
    assert chat.desk.stops == [True]
    assert texts_of(edits) == ["Stopping the daemon: flat first."]
    # The bot's line is on record before the console's own, which it writes as it stops.
    assert [(r.command, r.outcome) for r in chat.desk.commands()][-2:] == [
        ("/stop confirm", "allowed: stopping, flat first"),
        ("stop", "allowed: flatten first"),
    ]


async def test_breaker_reset_asks_then_lifts_the_losing_streak_pause(chat: Chat) -> None:
    await chat.desk.open_long()
    await chat.desk.stop_out()  # one loss: with max_consecutive_losses 1 the breaker pauses
    assert chat.desk.console.status().breaker.paused_until is not None

    [prompt] = await chat.send(OPERATOR, "/breaker reset")
    edits, _ = await chat.press(OPERATOR, prompt, "Confirm")

    assert prompt.text.startswith(
        "Reset the circuit breaker (it now holds: losing-streak pause until 2025-03-04 15:45 UTC)?"
    )
    breaker = chat.desk.console.status().breaker
    assert breaker.paused_until is None
    assert (breaker.realized_pnl, breaker.trades_today) == (Decimal("-51.24"), 1)  # they stay
    assert texts_of(edits) == ["Circuit breaker reset. Entries: open."]
    assert ("breaker reset", BY_OPERATOR) in [(r.command, r.by) for r in chat.desk.commands()]


# ------------------------------------------------------------------ what the read commands show


async def test_status_positions_and_orders_show_the_open_trade(chat: Chat) -> None:
    await chat.desk.open_long()

    [status] = await chat.send(VIEWER, "/status")
    [positions] = await chat.send(VIEWER, "/positions")
    [orders] = await chat.send(VIEWER, "/orders")

    assert status.text == (
        "State LONG · long 1 @ 5,000.00 since 2025-03-04 15:05 UTC\n"
        "Entry 5,000.00 · now 5,000.00 · unrealised +0.00 USD · held 5 min\n"
        "Stop 4,990.00 · target 5,015.00\n"
        "Entries: open\n"
        "Breaker: ok · today 1 trade, realized +0.00 USD\n"
        "Working orders: 2\n"
        "Last bar: 2025-03-04 15:05 UTC, close 5,000.00, z -2.50"
    )
    assert positions.text == (
        "Engine: long 1 @ 5,000.00 since 2025-03-04 15:05 UTC\n"
        "Entry 5,000.00 · now 5,000.00 · unrealised +0.00 USD · held 5 min\n"
        "Stop 4,990.00 · target 5,015.00\n"
        "Broker: +1 contract\nThey agree."
    )
    assert orders.text == (
        "Open at the broker (2):\n"
        "SELL 1 STP @ 4,990.00 (QS-1741100700-1-S)\n"
        "SELL 1 LMT @ 5,015.00 (QS-1741100700-1-T)\n"
        "Engine's working orders: QS-1741100700-1-S, QS-1741100700-1-T"
    )


async def test_pnl_trades_and_breaker_show_a_closed_trade_exactly(chat: Chat) -> None:
    await chat.desk.open_long()
    await chat.desk.stop_out()

    [pnl] = await chat.send(VIEWER, "/pnl today")
    [trades] = await chat.send(VIEWER, "/trades 1")
    [breaker] = await chat.send(VIEWER, "/breaker")

    assert pnl.text == (
        "P&L today (since 2025-03-03 23:00 UTC): 1 trade, 0 won, 1 lost\n"
        "Net -51.24 USD (gross -50.00, commissions 1.24)\n"
        "Best -51.24, worst -51.24"
    )
    assert trades.text == (
        "Last 1 trade (net USD, exit time):\n"
        "#1 LONG 1 5,000.00 → 4,990.00 stop -51.24 · 2025-03-04 15:15 UTC"
    )
    assert breaker.text == (
        "Circuit breaker: TRIPPED: losing-streak pause until 2025-03-04 15:45 UTC\n"
        "Trade date: 2025-03-04\n"
        "Realized today: -51.24 USD (halt at -200.00)\n"
        "Trades today: 1 of 50\n"
        "Loss streak: 0 of 1 (then a 30 min pause)\n"  # the streak starts over as it trips
        "Entries rejected by the broker: 0 of 3\n"
        "Max position age: 4 h\n"
        "/breaker reset (operator) lifts the halts; P&L and counts stay."
    )


async def test_positions_and_health_say_when_the_broker_is_unreachable(chat: Chat) -> None:
    await chat.desk.open_long()
    chat.desk.broker.connected = False
    chat.desk.health.link_up = False

    [positions] = await chat.send(VIEWER, "/positions")
    [health] = await chat.send(VIEWER, "/health")

    assert positions.text == (
        "Engine: long 1 @ 5,000.00 since 2025-03-04 15:05 UTC\n"
        "Entry 5,000.00 · now 5,000.00 · unrealised +0.00 USD · held 5 min\n"
        "Stop 4,990.00 · target 5,015.00\n"
        "Broker: did not answer (simulated broker is disconnected)"
    )
    assert health.text.startswith("Health: down · state LONG · position +1\nBroker link: DOWN")
    assert chat.desk.telegram_commands()[0] == (
        "/positions",
        BY_VIEWER,
        "allowed: broker did not answer: simulated broker is disconnected",
    )


async def test_a_command_that_fails_says_so_journals_it_and_lets_the_error_through(
    chat: Chat,
) -> None:
    chat.desk.health.broken = True

    with pytest.raises(RuntimeError, match="health probe failed"):
        await chat.send(VIEWER, "/health")

    assert texts(chat.api.sent) == ["/health failed: RuntimeError: health probe failed"]
    assert chat.desk.telegram_commands() == [
        ("/health", BY_VIEWER, "allowed: failed: RuntimeError: health probe failed")
    ]


async def test_config_never_shows_a_secret(chat: Chat) -> None:
    sent = await chat.send(OPERATOR, "/config")

    whole = "\n".join(texts(sent))
    assert "  token: **********" in whole
    assert "  url: **********" in whole
    assert chat.api.token not in whole
    assert chat.api.token.split(":")[1] not in whole
    assert DB_PASSWORD not in whole


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("/trades abc", "/trades takes a number of trades from 1 to 50, got 'abc'."),
        ("/trades 0", "/trades takes a number of trades from 1 to 50, got '0'."),
        ("/trades 51", "/trades takes a number of trades from 1 to 50, got '51'."),
        ("/trades -3", "/trades takes a number of trades from 1 to 50, got '-3'."),
        (
            "/trades 99999999999999999999",
            ("/trades takes a number of trades from 1 to 50, got '99999999999999999999'."),
        ),
        ("/pnl year", "Unknown period 'year': use /pnl today, /pnl week or /pnl month."),
        ("/status now", "/status takes no arguments."),
        ("/breaker off", "/breaker takes no argument, or 'reset': /breaker reset."),
        ("/pause now", "/pause takes no arguments."),
        ("/flatten all", "/flatten takes no arguments."),
        ("/stop now", "/stop takes no arguments."),
    ],
)
async def test_bad_arguments_get_one_clear_line_and_nothing_happens(
    chat: Chat, command: str, reply: str
) -> None:
    await chat.desk.open_long()

    sent = await chat.send(OPERATOR, command)

    assert texts(sent) == [reply]
    assert sent[0].reply_markup is None
    status = chat.desk.console.status()
    assert (status.state, status.paused, chat.desk.stops) == (EngineState.LONG, False, [])
    assert chat.desk.telegram_commands() == [(command, BY_OPERATOR, "allowed: bad arguments")]


def texts_of(edits: list[EditedMessage]) -> list[str]:
    return [e.text for e in edits]


async def test_status_values_the_open_position_at_the_last_close(chat: Chat) -> None:
    await chat.desk.open_long()
    moved = chat.desk.engine.on_bar(bar(T0 + timedelta(minutes=5), 5003.25), z(-1.0))
    await chat.desk.service.execute(moved)
    chat.desk.clock.set(T0 + timedelta(minutes=70))

    [status] = await chat.send(VIEWER, "/status")

    lines = status.text.splitlines()
    assert lines[1] == "Entry 5,000.00 · now 5,003.25 · unrealised +16.25 USD · held 1 h 5 min"
    assert lines[2] == "Stop 4,990.00 · target 5,015.00"
    assert "QS-" not in status.text


async def test_chart_sends_todays_equity_and_the_recent_price_as_photos(chat: Chat) -> None:
    await chat.desk.open_long()
    await chat.desk.stop_out()
    for minutes, close in ((0, 5000.0), (5, 5000.0), (10, 4985.0)):
        chat.desk.journal.append_bar("MESH5", bar(T0 + timedelta(minutes=minutes), close))

    replies = await chat.send(VIEWER, "/chart 2")

    assert replies == []  # no text: two photos
    equity, price = chat.api.photos[-2:]
    assert equity.caption is not None
    assert equity.caption.startswith("Equity today (since 2025-03-03 23:00 UTC): 1 trade, ")
    assert equity.caption.endswith("net -51.24 USD")
    assert equity.data[:8] == price.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (equity.width, equity.height) == (1000, 600)
    assert price.caption is not None
    assert price.caption.startswith("Price, last 2 h")


async def test_chart_without_bars_says_so_and_refuses_a_bad_window(chat: Chat) -> None:
    [no_bars] = await chat.send(VIEWER, "/chart")
    assert no_bars.text == "No bars recorded in the last 6 h: no price chart."
    assert len(chat.api.photos) == 1  # the equity chart still comes

    [refused] = await chat.send(VIEWER, "/chart 999")
    assert refused.text == "/chart takes a number of hours from 1 to 72, got '999'."
