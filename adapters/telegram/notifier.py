"""TelegramNotifier: the Notifier port over an aiogram ``Bot``, never in trading's way.

``notify`` is synchronous and O(1): it looks up the alert kind's mode, de-duplicates, appends to a
bounded in-memory queue and wakes the sender task. Only the sender talks to Telegram.

Modes (per alert kind; ``DEFAULT_MODES``, overridable by ``telegram.alerts``): ``on`` sends with
sound, ``silent`` sends with ``disable_notification``, ``off`` drops the alert (counted in ``muted``).

De-duplication: an alert with the same (kind, text) as one sent less than ``dedup_window_s`` ago
is not sent but counted (``deduplicated``). When the window closes with N such repeats, one message
"<text> (repeated N times, last <time>)" goes out and a new window opens, so a steady flood of the
same alert costs one message per window. ``close`` sends the pending counts too.

Rate limit: a token bucket of ``rate_limit_per_minute`` messages with a burst of ``burst``. Alerts
that wait are batched: one Telegram message carries every queued alert in a row that shares the same
sound setting and chats, up to Telegram's 4096 characters, so a backlog drains in a few messages.

Errors: a 429 waits exactly ``retry_after`` seconds and retries; network errors, timeouts and 5xx
retry with exponential backoff (``initial_backoff_s`` doubling up to ``max_backoff_s``); any other
Telegram error (chat not found, bot blocked, bad token) drops that message for that chat, counted in
``rejected`` and logged. Nothing raises into callers; the token never appears in a log line.

Loss bound. While the Bot API is unreachable (minutes or hours), alerts keep arriving and wait in
the queue. The queue keeps the newest ``queue_size`` alerts: every alert beyond that is dropped,
oldest first, and counted in ``dropped``. An alert being sent when a request fails goes back to the
head of the queue, so it is the first to drop if the queue overflows meanwhile. When the API comes
back, delivery resumes when the current backoff wait ends (at most ``max_backoff_s``) and the queued
alerts go out in their original order, batched (each line keeps its event time).
Only two things lose alerts: that overflow (``dropped``) and what is still queued when ``close``'s
timeout runs out (logged, ``backlog`` at close). ``deduplicated`` and ``muted`` alerts are not lost
but deliberately folded or silenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import LinkPreviewOptions

from application.backoff import BackoffPolicy, Retries
from application.ports import Clock
from domain.commands import Alert, AlertKind, Severity

__all__ = ["DEFAULT_MODES", "AlertMode", "TelegramNotifier"]

AlertMode = Literal["on", "silent", "off"]
_MODES: Final[Mapping[str, AlertMode]] = {mode: mode for mode in get_args(AlertMode)}

DEFAULT_MODES: Final[Mapping[AlertKind, AlertMode]] = {
    # Money moved or is at risk: the operator wants to hear it.
    AlertKind.ENTRY_FILLED: "on",
    AlertKind.EXIT_FILLED: "on",
    AlertKind.PROTECTIVE_EXIT: "on",
    AlertKind.ORDER_REJECTED: "on",
    # Trading stopped or restarted on its own, or state disagrees with the broker: act now.
    AlertKind.BREAKER_TRIPPED: "on",
    AlertKind.BREAKER_RESET: "on",
    AlertKind.RECONCILE_MISMATCH: "on",
    AlertKind.ANOMALY: "on",
    AlertKind.ERROR: "on",
    # The bot is blind or deaf: nothing new opens until it recovers.
    AlertKind.CONNECTION: "on",
    AlertKind.STALE_DATA: "on",
    # Start/stop and the end-of-session summary: few a day, each worth a glance.
    AlertKind.LIFECYCLE: "on",
    AlertKind.DAILY_SUMMARY: "on",
    # Confirms the entry fill just announced: informative; its absence raises other alerts.
    AlertKind.BRACKET_LIVE: "silent",
    # Echoes an operator's own command back to the chat: the person who typed it knows.
    AlertKind.OPERATOR: "silent",
}

MAX_MESSAGE = 4096
"""Telegram's limit on a text message, in characters."""
_ELLIPSIS = "…"
_TAGS: Final = {Severity.INFO: "INFO", Severity.WARNING: "WARNING", Severity.CRITICAL: "CRITICAL"}

log = logging.getLogger("quant_scalper.telegram")


def resolve_modes(overrides: Mapping[str, str] | None) -> dict[AlertKind, AlertMode]:
    """DEFAULT_MODES with ``overrides`` (alert kind value -> mode) applied; bad names are errors."""
    modes = dict(DEFAULT_MODES)
    by_value = {kind.value: kind for kind in AlertKind}
    for name, mode in (overrides or {}).items():
        kind = by_value.get(name)
        if kind is None:
            raise ValueError(f"unknown alert kind {name!r}; known: {', '.join(sorted(by_value))}")
        checked = _MODES.get(mode)
        if checked is None:
            raise ValueError(f"alert kind {name}: mode {mode!r} is not one of on, silent, off")
        modes[kind] = checked
    return modes


def format_alert(alert: Alert, repeats: int = 0) -> str:
    """One plain-text line: ``[SEVERITY] kind: text (YYYY-MM-DD HH:MM:SS UTC)``."""
    when = alert.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    suffix = (
        f" (repeated {repeats} {'time' if repeats == 1 else 'times'}, last {when})"
        if repeats
        else f" ({when})"
    )
    head = f"[{_TAGS[alert.severity]}] {alert.kind.value}: "
    room = MAX_MESSAGE - len(head) - len(suffix)
    text = alert.text if len(alert.text) <= room else alert.text[: room - 1] + _ELLIPSIS
    return head + text + suffix


@dataclass(frozen=True, slots=True)
class _Item:
    line: str
    silent: bool
    chats: tuple[int, ...]
    counted: bool = False
    """Already counted in ``sent`` (delivered to another chat; these chats are still owed it)."""


@dataclass(frozen=True, slots=True)
class _Retry:
    after_s: float


@dataclass(slots=True)
class _Window:
    start: float
    repeats: int
    last: Alert


class TokenBucket:
    """``rate`` tokens per minute, at most ``burst`` saved up; time is the caller's, in seconds."""

    def __init__(self, rate_per_minute: int, burst: int, now: float) -> None:
        if rate_per_minute < 1 or burst < 1:
            raise ValueError(f"rate ({rate_per_minute}/min) and burst ({burst}) must be >= 1")
        self._per_second = rate_per_minute / 60.0
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_second)
            self._at = now

    def delay(self, now: float) -> float:
        """Seconds until a token is available (0: one is available now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._per_second

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1


class TelegramNotifier:
    """Alerts to Telegram chats through a bounded queue and one sender task; see the module doc."""

    def __init__(
        self,
        bot: Bot,
        chat_ids: Sequence[int],
        *,
        clock: Clock,
        modes: Mapping[str, str] | None = None,
        rate_limit_per_minute: int = 20,
        burst: int | None = None,
        queue_size: int = 1000,
        dedup_window_s: float = 60.0,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        request_timeout_s: int = 10,
    ) -> None:
        if not chat_ids:
            raise ValueError("chat_ids is empty: name at least one chat to receive alerts")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if dedup_window_s < 0:
            raise ValueError(f"dedup_window_s must be >= 0, got {dedup_window_s}")
        if not 0 < initial_backoff_s <= max_backoff_s:
            raise ValueError(
                f"need 0 < initial_backoff_s <= max_backoff_s, got {initial_backoff_s}, "
                f"{max_backoff_s}"
            )
        self._bot = bot
        self._chats = tuple(dict.fromkeys(chat_ids))
        self._clock = clock
        self._modes = resolve_modes(modes)
        self._bucket = TokenBucket(
            rate_limit_per_minute,
            min(rate_limit_per_minute, 5) if burst is None else burst,
            self._now(),
        )
        self._queue_size = queue_size
        self._window = dedup_window_s
        # Doubling from initial_backoff_s to max_backoff_s, no jitter: one sender per daemon.
        self._backoff = Retries(
            BackoffPolicy(initial_s=float(initial_backoff_s), max_s=float(max_backoff_s))
        )
        self._request_timeout = request_timeout_s
        self._queue: deque[_Item] = deque()
        self._in_flight = 0
        self._windows: dict[tuple[AlertKind, str], _Window] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._sent = self._messages = self._dropped = self._retries = 0
        self._deduplicated = self._rejected = self._muted = 0
        self._failing_since: datetime | None = None
        self._dropped_logged = 0

    # -- the port --------------------------------------------------------------------------------

    def notify(self, alert: Alert) -> None:
        """Queue ``alert`` for sending; returns at once and never raises."""
        try:
            mode = self._modes[alert.kind]
            if mode == "off":
                self._muted += 1
                return
            if self._closing:
                self._dropped += 1
                return
            if self._window > 0 and self._suppressed(alert):
                return
            self._enqueue(_Item(format_alert(alert), mode == "silent", self._chats))
        except Exception:  # a bug here must not reach trading
            log.exception("alert %s could not be queued", alert.kind.value)

    # -- observability ---------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Alerts waiting to be sent, including those in the request under way."""
        return len(self._queue) + self._in_flight

    @property
    def sent(self) -> int:
        """Alerts delivered to at least one chat."""
        return self._sent

    @property
    def messages(self) -> int:
        """Telegram messages delivered (a message carries one or more alerts, to one chat)."""
        return self._messages

    @property
    def dropped(self) -> int:
        """Alerts lost because the queue was full (oldest first) or the notifier was closed."""
        return self._dropped

    @property
    def retries(self) -> int:
        """Send attempts repeated after a 429, a network error, a timeout or a 5xx."""
        return self._retries

    @property
    def deduplicated(self) -> int:
        """Repeats of an alert folded into a "(repeated N times)" message."""
        return self._deduplicated

    @property
    def rejected(self) -> int:
        """Alert deliveries Telegram refused for good (4xx: chat not found, bot blocked, ...)."""
        return self._rejected

    @property
    def muted(self) -> int:
        """Alerts of a kind whose mode is ``off``."""
        return self._muted

    @property
    def failing_since(self) -> datetime | None:
        """When the current run of failed requests began; None while Telegram answers."""
        return self._failing_since

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender task on the running loop."""
        if self._task is not None:
            raise RuntimeError("TelegramNotifier is already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="telegram-notifier")

    async def close(self, timeout: float = 5.0) -> None:
        """Send what can be sent within ``timeout`` seconds (pending repeat counts too), then stop."""
        if self._closing:
            return
        self._flush_windows(self._now(), everything=True)
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.backlog:
            log.warning(
                "Telegram notifier closed with %d alert(s) unsent (%d dropped in all)",
                self.backlog,
                self._dropped,
            )

    # -- queueing --------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _suppressed(self, alert: Alert) -> bool:
        """Fold ``alert`` into its open de-duplication window (True), or open one (False)."""
        key = (alert.kind, alert.text)
        now = self._now()
        window = self._windows.get(key)
        if window is not None and now < window.start + self._window:
            window.repeats += 1
            window.last = alert
            self._deduplicated += 1
            return True
        if window is not None and window.repeats:
            # The sender has not yet reported the closed window: report it with this one.
            del self._windows[key]
            self._windows[key] = _Window(now, 0, alert)
            self._enqueue_line(format_alert(alert, window.repeats + 1), alert.kind)
            return True
        self._windows.pop(key, None)  # re-inserted last: the dict stays in deadline order
        self._windows[key] = _Window(now, 0, alert)
        return False

    def _flush_windows(self, now: float, *, everything: bool = False) -> None:
        """Report windows that have closed with repeats; forget the quiet ones."""
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if not everything and now < window.start + self._window:
                return
            del self._windows[key]
            if window.repeats:
                self._enqueue_line(format_alert(window.last, window.repeats), key[0])
                if not everything:
                    self._windows[key] = _Window(now, 0, window.last)

    def _enqueue_line(self, line: str, kind: AlertKind) -> None:
        self._enqueue(_Item(line, self._modes[kind] == "silent", self._chats))

    def _enqueue(self, item: _Item) -> None:
        if len(self._queue) >= self._queue_size:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(item)
        self._wake.set()

    def _requeue(self, items: Iterable[_Item]) -> None:
        """Put unsent items back at the head; if that overflows the queue, the oldest go."""
        self._queue.extendleft(reversed(list(items)))
        while len(self._queue) > self._queue_size:
            self._queue.popleft()
            self._dropped += 1

    def _take_batch(self) -> list[_Item]:
        """The head item and those after it that can share its message."""
        first = self._queue.popleft()
        batch, size = [first], len(first.line)
        while self._queue:
            item = self._queue[0]
            if (item.silent, item.chats) != (first.silent, first.chats):
                break
            if size + 1 + len(item.line) > MAX_MESSAGE:
                break
            batch.append(self._queue.popleft())
            size += 1 + len(item.line)
        return batch

    # -- sending ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                now = self._now()
                if self._window > 0:
                    self._flush_windows(now)
                if not self._queue:
                    if self._closing:
                        return
                    await self._idle()
                    continue
                delay = self._bucket.delay(now)
                if delay > 0:
                    await self._clock.sleep(delay)
                    continue
                self._bucket.take(now)
                await self._deliver(self._take_batch())
            except asyncio.CancelledError:
                raise
            except Exception:  # the sender must outlive any bug in one round
                log.exception("Telegram notifier: unexpected error; carrying on")
                await self._clock.sleep(self._backoff.policy.max_s)  # a repeating bug must not spin

    async def _idle(self) -> None:
        """Wait for a new alert, or until the oldest de-duplication window closes."""
        self._wake.clear()
        if self._queue or self._closing:
            return
        waits: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait())}
        if self._windows and self._window > 0:
            first = next(iter(self._windows.values()))
            due = first.start + self._window - self._now()
            waits.add(asyncio.ensure_future(self._clock.sleep(max(due, 0.0))))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _deliver(self, batch: list[_Item]) -> None:
        """Send ``batch`` as one message to each of its chats; requeue it if it must be retried."""
        text = "\n".join(item.line for item in batch)
        first = batch[0]
        remaining = list(first.chats)
        delivered = False
        retry: _Retry | None = None
        self._in_flight = len(batch)
        try:
            for chat in first.chats:
                outcome = await self._send(chat, text, first.silent)
                if isinstance(outcome, _Retry):
                    retry = outcome
                    break
                if outcome is None:
                    delivered = True
                else:
                    self._reject(chat, len(batch), outcome)
                remaining.remove(chat)
        finally:
            # Also when closing cancels the request: what is unsent stays counted in the backlog.
            self._in_flight = 0
            if delivered:
                self._sent += sum(1 for item in batch if not item.counted)
            if remaining:
                self._requeue(
                    replace(item, chats=tuple(remaining), counted=item.counted or delivered)
                    for item in batch
                )
        if retry is not None:
            self._retries += 1
            await self._clock.sleep(retry.after_s)

    async def _send(self, chat: int, text: str, silent: bool) -> _Retry | Exception | None:
        """Send one message: None when delivered, when to retry, or Telegram's refusal."""
        try:
            await self._bot.send_message(
                chat_id=chat,
                text=text,
                parse_mode=None,  # plain text, whatever the Bot's defaults say
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                disable_notification=silent,
                request_timeout=self._request_timeout,
            )
        except TelegramRetryAfter as error:
            return self._failed(error, float(error.retry_after))
        except TelegramEntityTooLarge as error:  # a TelegramNetworkError, but final
            return error
        except (
            TelegramNetworkError,
            TelegramServerError,
            ClientDecodeError,
            OSError,  # TimeoutError included
        ) as error:
            return self._failed(error, self._backoff.next_delay())
        except Exception as error:  # 4xx and anything unforeseen: this chat will not take it
            return error
        self._messages += 1
        self._recovered()
        return None

    def _failed(self, error: Exception, delay: float) -> _Retry:
        """Note a failed request that will be retried after ``delay`` seconds; returns the delay."""
        if self._failing_since is None:
            self._failing_since = self._clock.now()
            log.warning(
                "Telegram unreachable (%s); retrying in %.1f s, %d alert(s) queued",
                self._describe(error),
                delay,
                self.backlog,
            )
        else:
            log.debug(
                "Telegram still unreachable (%s); retrying in %.1f s", self._describe(error), delay
            )
        if self._dropped > self._dropped_logged:
            log.warning(
                "Telegram alert queue full (%d): %d oldest alert(s) dropped so far",
                self._queue_size,
                self._dropped,
            )
            self._dropped_logged = self._dropped
        return _Retry(delay)

    def _recovered(self) -> None:
        self._backoff.reset()
        if self._failing_since is not None:
            log.info(
                "Telegram reachable again (failing since %s); %d alert(s) queued, %d dropped",
                self._failing_since.isoformat(),
                len(self._queue),
                self._dropped,
            )
            self._failing_since = None

    def _reject(self, chat: int, alerts: int, error: Exception) -> None:
        self._rejected += alerts
        log.warning(
            "Telegram refused %d alert(s) for chat %d, dropped: %s",
            alerts,
            chat,
            self._describe(error),
        )

    def _describe(self, error: Exception) -> str:
        """The error in one line, with the bot token masked should any library put it there."""
        # aiogram's errors keep the bare description in .message; their str() adds decoration.
        message = str(getattr(error, "message", None) or error)
        text = f"{type(error).__name__}: {message}".replace(self._bot.token, "<token>")
        secret = self._bot.token.partition(":")[2]
        if secret:
            text = text.replace(secret, "<token>")
        return text.splitlines()[0] if text else type(error).__name__
