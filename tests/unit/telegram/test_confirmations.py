"""The confirmation book: the asker only, before the deadline, once."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest

from adapters.simulated.clock import ManualClock
from entrypoints.telegram.confirmations import (
    Choice,
    ConfirmationBook,
    ConfirmButton,
    Verdict,
)
from tests.support.builders import T0

ASKER, OTHER = 1, 2
YES_NO = (Choice.CONFIRM, Choice.CANCEL)


def _book(timeout_s: float = 60, capacity: int = 100) -> tuple[ConfirmationBook, ManualClock]:
    clock = ManualClock(T0)
    ids = count(1)
    return ConfirmationBook(
        clock, timeout_s, capacity=capacity, new_id=lambda: f"id{next(ids)}"
    ), clock


@pytest.mark.parametrize(
    ("presser", "choice", "after_s", "verdict", "stays"),
    [
        (ASKER, Choice.CONFIRM, 0, Verdict.TAKEN, False),
        (ASKER, Choice.CANCEL, 59.999, Verdict.TAKEN, False),
        (ASKER, Choice.CONFIRM, 60, Verdict.EXPIRED, False),
        (OTHER, Choice.CONFIRM, 0, Verdict.NOT_YOURS, True),
        (OTHER, Choice.CONFIRM, 120, Verdict.NOT_YOURS, True),
        (ASKER, Choice.STOP_KEEP_BRACKET, 0, Verdict.UNKNOWN, True),  # not a choice offered
    ],
)
def test_a_press_is_judged_by_who_when_and_what(
    presser: int, choice: Choice, after_s: float, verdict: Verdict, stays: bool
) -> None:
    book, clock = _book()
    pending = book.open("flatten", ASKER, YES_NO)
    clock.advance(timedelta(seconds=after_s))

    claim = book.claim(pending.id, presser, choice)

    assert claim.verdict is verdict
    assert claim.pending == (None if verdict is Verdict.UNKNOWN else pending)
    assert len(book) == (1 if stays else 0)


def test_a_confirmation_is_single_use() -> None:
    book, _ = _book()
    pending = book.open("stop", ASKER, YES_NO)

    first = book.claim(pending.id, ASKER, Choice.CONFIRM)
    second = book.claim(pending.id, ASKER, Choice.CONFIRM)

    assert (first.verdict, second.verdict) == (Verdict.TAKEN, Verdict.UNKNOWN)


def test_the_book_forgets_expired_and_its_oldest_entries() -> None:
    book, clock = _book(timeout_s=10, capacity=2)
    stale = book.open("flatten", ASKER, YES_NO)
    clock.advance(timedelta(seconds=10))
    older = book.open("flatten", ASKER, YES_NO)
    newer = book.open("stop", ASKER, YES_NO)
    newest = book.open("breaker_reset", ASKER, YES_NO)

    assert len(book) == 2
    assert book.claim(stale.id, ASKER, Choice.CONFIRM).verdict is Verdict.UNKNOWN
    assert book.claim(older.id, ASKER, Choice.CONFIRM).verdict is Verdict.UNKNOWN
    assert book.claim(newer.id, ASKER, Choice.CONFIRM).verdict is Verdict.TAKEN
    assert book.claim(newest.id, ASKER, Choice.CONFIRM).verdict is Verdict.TAKEN


def test_real_ids_are_random_and_fit_in_callback_data() -> None:
    book = ConfirmationBook(ManualClock(T0), 60)
    pendings = [book.open("stop", ASKER, YES_NO) for _ in range(50)]

    assert len({p.id for p in pendings}) == 50
    for pending in pendings:
        for choice in Choice:
            data = ConfirmButton(id=pending.id, choice=choice).pack()
            assert len(data.encode()) <= 64  # Telegram's limit on callback data
            assert ConfirmButton.unpack(data) == ConfirmButton(id=pending.id, choice=choice)


@pytest.mark.parametrize(("timeout_s", "capacity"), [(0, 10), (-1, 10), (60, 0)])
def test_a_book_refuses_a_meaningless_setup(timeout_s: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        ConfirmationBook(ManualClock(T0), timeout_s, capacity=capacity)
