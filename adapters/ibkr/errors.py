"""IB's error codes, classified once: what each means in plain words and what the daemon does.

TWS sends errors, warnings and notices through one callback (``error``), told apart only by code.
Libraries get this wrong in both directions (``reference/operations.md`` §6 #2): ib_async 2.1 ends a
live order on 10349 ("Order TIF was set to DAY based on order preset"), and a bot that treats every
code as fatal tears down a healthy link on a data-farm notice. Here every code the daemon can see
has one row: its class, the daemon's action and the words an operator reads. A code not in the table
is :data:`NoticeClass.UNKNOWN`: logged with IB's text, counted in ``/metrics``, and never trusted to
end an order (the order is confirmed against IB's open orders first).

Sources: IB's TWS API message-code tables (system, warning, client and order codes) and the failures
other IB bots reported (``reference/operations.md`` §2 and §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NoticeClass(StrEnum):
    INFORMATION = "information"
    DATA_FARM = "data_farm"
    CONNECTIVITY = "connectivity"
    ORDER_REJECT = "order_reject"
    ORDER_WARNING = "order_warning"
    ORDER_CANCELLED = "order_cancelled"
    CANCEL_REFUSED = "cancel_refused"
    PACING = "pacing"
    ENTITLEMENT = "entitlement"
    REQUEST_ERROR = "request_error"
    FATAL = "fatal"
    UNKNOWN = "unknown"


class Action(StrEnum):
    """What the daemon does on a code (the IB session and broker carry it out)."""

    LOG = "log it"
    LINK_LOST = "gate entries until IB restores the link"
    RESTORED_DATA_LOST = "resubscribe, backfill, resync, reconcile, reopen entries"
    RESTORED_DATA_KEPT = "resync, reconcile, reopen entries"
    FARM_DOWN = "note the farm down (a data event: the order link stays)"
    FARM_UP = "resubscribe the bars if that farm was down"
    FEED_DROPPED = "leave it to the feed watchdog (it resubscribes when bars stop)"
    REJECT = "end the order as rejected, with the reason, never retried"
    END_ORDER = "end the order as cancelled"
    CONFIRM = "confirm against IB's open orders before the engine is told anything"
    BACK_OFF = "log it: the pacing limiter spaces the requests"
    GATE_ENTITLEMENT = "gate entries and alert once: a market-data subscription is missing"
    GATE_COMPETING_SESSION = "gate entries and alert once: log out the other session"
    GATE_FATAL = "gate entries and page the operator"


@dataclass(frozen=True, slots=True)
class Notice:
    code: int
    cls: NoticeClass
    action: Action
    plain: str
    """What it means, for the journal and the operator's phone."""


def _n(code: int, cls: NoticeClass, action: Action, plain: str) -> Notice:
    return Notice(code, cls, action, plain)


_I, _F, _C = NoticeClass.INFORMATION, NoticeClass.DATA_FARM, NoticeClass.CONNECTIVITY
_R, _W, _E = NoticeClass.ORDER_REJECT, NoticeClass.ORDER_WARNING, NoticeClass.ENTITLEMENT
_Q = NoticeClass.REQUEST_ERROR

NOTICES: dict[int, Notice] = {
    n.code: n
    for n in (
        # -- the link between TWS/Gateway and IB's servers (system codes)
        _n(1100, _C, Action.LINK_LOST, "IB Gateway lost its connection to IB's servers"),
        _n(
            1101, _C, Action.RESTORED_DATA_LOST, "IB connectivity restored; data subscriptions lost"
        ),
        _n(
            1102, _C, Action.RESTORED_DATA_KEPT, "IB connectivity restored; data subscriptions kept"
        ),
        _n(1300, _C, Action.LOG, "the Gateway's socket port was reset: reconnecting"),
        _n(
            2110,
            _C,
            Action.LOG,
            "the Gateway's link to IB's servers is broken (it restores itself)",
        ),
        _n(
            502,
            _C,
            Action.LOG,
            "could not connect to the Gateway (is the API enabled on that port?)",
        ),
        _n(504, _C, Action.LOG, "not connected to the Gateway"),
        _n(507, _C, Action.LOG, "bad message length from the Gateway: the link is reset"),
        _n(509, _C, Action.LOG, "the socket to the Gateway failed: reconnecting"),
        _n(326, _C, Action.LOG, "the client id is already in use on the Gateway"),
        _n(10182, _C, Action.FEED_DROPPED, "IB failed to send live updates (disconnected)"),
        # -- data farms: data events, never a reason to drop the order link
        _n(2103, _F, Action.FARM_DOWN, "the market-data farm connection is broken"),
        _n(2104, _F, Action.FARM_UP, "the market-data farm connection is OK"),
        _n(2105, _F, Action.FARM_DOWN, "the historical-data farm connection is broken"),
        _n(2106, _F, Action.FARM_UP, "the historical-data farm connection is OK"),
        _n(2107, _F, Action.LOG, "the historical-data farm is inactive but available on demand"),
        _n(2108, _F, Action.LOG, "the market-data farm is inactive but available on demand"),
        _n(2119, _F, Action.LOG, "the market-data farm is connecting"),
        _n(2157, _F, Action.FARM_DOWN, "the security-definition farm connection is broken"),
        _n(2158, _F, Action.FARM_UP, "the security-definition farm connection is OK"),
        _n(10225, _F, Action.FEED_DROPPED, "a real-time bar bust: the subscription was ended"),
        # -- notices
        _n(2100, _I, Action.LOG, "the API client was unsubscribed from account data"),
        _n(2101, _I, Action.LOG, "another client holds the account-data subscription"),
        _n(2150, _I, Action.LOG, "an invalid position trade derived value"),
        _n(2168, _I, Action.LOG, "etradeonly order attribute ignored"),
        _n(2169, _I, Action.LOG, "firmQuoteOnly order attribute ignored"),
        _n(2174, _I, Action.LOG, "a request without an explicit time zone"),
        _n(2176, _I, Action.LOG, "this API version does not support fractional size rules"),
        _n(2187, _I, Action.LOG, "an IB notice outside the documented warning range"),
        _n(165, _I, Action.LOG, "a historical-data service message"),
        _n(366, _I, Action.LOG, "no historical data request found for that id (already ended)"),
        # -- about a live order: never ends it
        _n(399, _W, Action.CONFIRM, "an order message (e.g. it waits for the market to open)"),
        _n(404, _W, Action.CONFIRM, "the order is held while shares are located"),
        _n(2102, _W, Action.CONFIRM, "the order is still being processed: not modified"),
        _n(2109, _W, Action.CONFIRM, "outside-regular-hours was ignored for this order"),
        _n(2137, _W, Action.CONFIRM, "the closing quantity is larger than the position"),
        _n(10349, _W, Action.CONFIRM, "IB set the order's time in force to DAY (order preset)"),
        _n(104, _W, Action.CONFIRM, "a change to an order that has filled was refused"),
        # -- the end of an order
        _n(202, NoticeClass.ORDER_CANCELLED, Action.END_ORDER, "the order was cancelled"),
        _n(161, NoticeClass.CANCEL_REFUSED, Action.CONFIRM, "the order was not cancellable"),
        _n(10147, NoticeClass.CANCEL_REFUSED, Action.CONFIRM, "the order to cancel was not found"),
        _n(10148, NoticeClass.CANCEL_REFUSED, Action.CONFIRM, "the order could not be cancelled"),
        _n(10149, NoticeClass.CANCEL_REFUSED, Action.CONFIRM, "invalid order id to cancel"),
        # -- rejects: never retried; the reason reaches the journal and the operator
        _n(103, _R, Action.REJECT, "duplicate order id"),
        _n(110, _R, Action.REJECT, "the price is not a multiple of the contract's tick"),
        _n(200, _R, Action.REJECT, "IB has no security definition for the contract"),
        _n(201, _R, Action.REJECT, "IB rejected the order"),
        _n(203, _R, Action.REJECT, "the contract is not allowed for this account"),
        _n(382, _R, Action.REJECT, "the order size exceeds what IB accepts"),
        _n(387, _R, Action.REJECT, "the order type is not supported for this contract"),
        _n(388, _R, Action.REJECT, "the order size is below the minimum"),
        _n(434, _R, Action.REJECT, "the order size cannot be zero"),
        _n(451, _R, Action.REJECT, "the order is over the account's Total Value Limit"),
        _n(460, _R, Action.REJECT, "the account has no trading permission for this contract"),
        _n(463, _R, Action.REJECT, "the order has no valid price"),
        # -- pacing
        _n(100, NoticeClass.PACING, Action.BACK_OFF, "too many messages per second to IB"),
        _n(
            162,
            NoticeClass.PACING,
            Action.BACK_OFF,
            "a historical-data service error (pacing, or no data)",
        ),
        _n(420, NoticeClass.PACING, Action.BACK_OFF, "an invalid real-time query (pacing)"),
        # -- entitlements: no (or only delayed) data
        _n(354, _E, Action.GATE_ENTITLEMENT, "no market-data subscription for this contract"),
        _n(10089, _E, Action.GATE_ENTITLEMENT, "the data needs an API market-data subscription"),
        _n(10090, _E, Action.GATE_ENTITLEMENT, "part of the market data is not subscribed"),
        _n(10167, _E, Action.GATE_ENTITLEMENT, "not subscribed: IB shows delayed data"),
        _n(10168, _E, Action.GATE_ENTITLEMENT, "not subscribed, and delayed data is off"),
        _n(10197, _E, Action.GATE_COMPETING_SESSION, "no market data: a competing live session"),
        # -- requests that failed (the request's caller gets the error)
        _n(321, _Q, Action.LOG, "IB could not validate a request"),
        _n(322, _Q, Action.LOG, "IB could not process a request"),
        # -- the Gateway cannot serve this client
        _n(503, NoticeClass.FATAL, Action.GATE_FATAL, "the Gateway is too old for this API"),
        _n(505, NoticeClass.FATAL, Action.GATE_FATAL, "the Gateway sent an unknown message id"),
    )
}

_UNKNOWN_PLAIN = "an IB code this daemon does not know"

HISTORICAL_PERMISSION = Notice(
    162,
    _E,
    Action.GATE_ENTITLEMENT,
    "no market-data permission for this contract's historical data",
)
"""162 is the historical-data service's code for everything it refuses: pacing, a query it
cancelled, no data, and no permission. Only its text tells them apart (``reference/operations.md``
§2 #7); "No market data permissions for CME FUT" is the warm-up's answer on an account without the
CME subscription, an entitlement, not pacing."""


def classify(code: int, text: str = "") -> Notice:
    """The row for ``code`` (and, for 162, IB's ``text``); a code not in the table is
    :data:`NoticeClass.UNKNOWN`: logged, counted and confirmed (never trusted to end an order)."""
    if code == 162 and "permission" in text.lower():
        return HISTORICAL_PERMISSION
    notice = NOTICES.get(code)
    if notice is not None:
        return notice
    return Notice(code, NoticeClass.UNKNOWN, Action.CONFIRM, _UNKNOWN_PLAIN)


def in_plain_words(code: int, text: str) -> str:
    """IB's ``text`` after what ``code`` means, for a reject's reason: "IB rejected the order
    (201): Order rejected - reason: ... margin ..."."""
    notice = classify(code, text)
    return f"{notice.plain} ({code}): {text}" if text else f"{notice.plain} ({code})"
