"""Pure mappings: journal records to table rows and back, and records and snapshots to exact JSON.

Rows hold Python values (Decimal, aware datetimes) that the column types in :mod:`adapters.sql.schema`
store exactly. The JSON form (the spool's lines, the stored engine snapshot) is exact too: Decimals
as their strings, times as ISO-8601 UTC, floats as their shortest repr; every object carries its
type name, and decoding checks every field against the domain type's annotations, so a file written
by another version of the code fails loudly instead of loading half right.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints

from application.ports import ResumePoint
from domain.bar import Bar
from domain.calendar import cme_trade_date
from domain.circuit_breaker import BreakerReset, BreakerRule, BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    JournalRecord,
    OperatorRecord,
    OrderEventRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalAction,
    SignalRecord,
)
from domain.engine import EngineSnapshot
from domain.position import ExitReason, Fill, RoundTrip
from domain.values import Action, Side

SNAPSHOT_FORMAT = 1
"""Version of the stored snapshot JSON; a snapshot of another version is refused, not guessed at."""


class SerializationError(ValueError):
    """Stored data that does not decode to the domain type it claims to be."""


@dataclass(frozen=True, slots=True)
class RecordedBar:
    """A bar of the recorded feed, with the contract it belongs to."""

    contract: str
    bar: Bar


@dataclass(frozen=True, slots=True)
class NumberedCommand:
    """An operator command with its number among identical ones (same time, user and command):
    see ``application.queries.CommandOccurrences``. A bare OperatorRecord is occurrence 0."""

    record: OperatorRecord
    occurrence: int


JournalItem = JournalRecord | RecordedBar | NumberedCommand
"""What the SQL journal queues: a journal record, a recorded bar or a numbered command."""

Row = dict[str, Any]
K = TypeVar("K", bound=JournalRecord)

# -- rows ---------------------------------------------------------------------------------------


def _side(side: Side | None) -> str | None:
    return None if side is None else side.name


def _side_of(name: str | None) -> Side | None:
    return None if name is None else Side[name]


def _fill_row(item: FillRecord) -> Row:
    f = item.fill
    return {
        "exec_id": f.exec_id,
        "order_key": f.order_key,
        "role": item.role,
        "action": f.action.value,
        "qty": f.qty,
        "price": f.price,
        "ts": f.ts,
        "commission": f.commission,
    }


def _signal_row(item: SignalRecord) -> Row:
    return {
        "ts": item.ts,
        "bar_start": item.bar_start,
        "close": item.close,
        "z": item.z,
        "action": item.action.value,
        "side": _side(item.side),
        "detail": item.detail,
    }


def _intent_row(item: OrderIntentRecord) -> Row:
    return {
        "key": item.key,
        "role": item.role,
        "action": item.action.value,
        "qty": item.qty,
        "order_type": item.order_type,
        "price": item.price,
        "ts": item.ts,
        "detail": item.detail,
    }


def _order_event_row(item: OrderEventRecord) -> Row:
    return {"order_key": item.key, "status": item.status, "ts": item.ts, "detail": item.detail}


def _round_trip_row(item: RoundTripRecord) -> Row:
    t = item.trip
    return {
        "seq": t.seq,
        "side": t.side.name,
        "qty": t.qty,
        "entry_ts": t.entry_ts,
        "entry_price": t.entry_price,
        "exit_ts": t.exit_ts,
        "exit_price": t.exit_price,
        "exit_reason": t.exit_reason.value,
        "pnl_ticks": t.pnl_ticks,
        "gross_pnl": t.gross_pnl,
        "commissions": t.commissions,
        "net_pnl": t.net_pnl,
        "trade_date": cme_trade_date(t.exit_ts),
    }


def _breaker_row(item: BreakerRecord) -> Row:
    e = item.event
    if isinstance(e, BreakerTripped):
        return {
            "kind": "tripped",
            "cause": e.rule.value,
            "ts": e.ts,
            "detail": e.detail,
            "until": e.until,
        }
    return {"kind": "reset", "cause": e.reason, "ts": e.ts, "detail": "", "until": None}


def _operator_row(item: OperatorRecord, occurrence: int = 0) -> Row:
    return {
        "command": item.command,
        "by": item.by,
        "ts": item.ts,
        "outcome": item.outcome,
        "occurrence": occurrence,
    }


def _bar_row(item: RecordedBar) -> Row:
    b = item.bar
    return {
        "contract": item.contract,
        "ts": b.ts,
        "seconds": b.seconds,
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "volume": b.volume,
    }


def _signal(row: Mapping[Any, Any]) -> SignalRecord:
    return SignalRecord(
        ts=row["ts"],
        bar_start=row["bar_start"],
        close=row["close"],
        z=row["z"],
        action=SignalAction(row["action"]),
        side=_side_of(row["side"]),
        detail=row["detail"],
    )


def _intent(row: Mapping[Any, Any]) -> OrderIntentRecord:
    return OrderIntentRecord(
        key=row["key"],
        role=row["role"],
        action=Action(row["action"]),
        qty=row["qty"],
        order_type=row["order_type"],
        price=row["price"],
        ts=row["ts"],
        detail=row["detail"],
    )


def _order_event(row: Mapping[Any, Any]) -> OrderEventRecord:
    return OrderEventRecord(
        key=row["order_key"], status=row["status"], ts=row["ts"], detail=row["detail"]
    )


def _fill(row: Mapping[Any, Any]) -> FillRecord:
    fill = Fill(
        exec_id=row["exec_id"],
        order_key=row["order_key"],
        action=Action(row["action"]),
        qty=row["qty"],
        price=row["price"],
        ts=row["ts"],
        commission=row["commission"],
    )
    return FillRecord(fill=fill, role=row["role"])


def _round_trip(row: Mapping[Any, Any]) -> RoundTripRecord:
    trip = RoundTrip(
        seq=row["seq"],
        side=Side[row["side"]],
        qty=row["qty"],
        entry_ts=row["entry_ts"],
        entry_price=row["entry_price"],
        exit_ts=row["exit_ts"],
        exit_price=row["exit_price"],
        exit_reason=ExitReason(row["exit_reason"]),
        pnl_ticks=row["pnl_ticks"],
        gross_pnl=row["gross_pnl"],
        commissions=row["commissions"],
    )
    return RoundTripRecord(trip)


def _breaker(row: Mapping[Any, Any]) -> BreakerRecord:
    kind = row["kind"]
    if kind == "tripped":
        return BreakerRecord(
            BreakerTripped(
                rule=BreakerRule(row["cause"]),
                ts=row["ts"],
                detail=row["detail"],
                until=row["until"],
            )
        )
    if kind == "reset":
        return BreakerRecord(BreakerReset(ts=row["ts"], reason=row["cause"]))
    raise SerializationError(f"breaker_events row {row.get('id')}: unknown kind {kind!r}")


def _operator(row: Mapping[Any, Any]) -> OperatorRecord:
    return OperatorRecord(
        command=row["command"], by=row["by"], ts=row["ts"], outcome=row["outcome"]
    )


def bar_of_row(row: Mapping[Any, Any]) -> Bar:
    return Bar(
        row["ts"], row["seconds"], row["open"], row["high"], row["low"], row["close"], row["volume"]
    )


# -- the registry of journal record kinds -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordKind(Generic[K]):
    """One kind of journal record, everything the SQL journal needs of it in one place: its
    table in :mod:`adapters.sql.schema` (whose unique constraint is its identity,
    ``schema.NATURAL_KEYS``), the column time windows select on, its row both ways, and its JSON
    tag (the type's name) in spool lines."""

    type: type[K]
    table: str
    time_column: str
    to_row: Callable[[K], Row]
    from_row: Callable[[Mapping[Any, Any]], K]

    @property
    def json_tag(self) -> str:
        return self.type.__name__


RECORDS: dict[type[Any], RecordKind[Any]] = {
    kind.type: kind
    for kind in (
        RecordKind(SignalRecord, "signals", "ts", _signal_row, _signal),
        RecordKind(OrderIntentRecord, "order_intents", "ts", _intent_row, _intent),
        RecordKind(OrderEventRecord, "order_events", "ts", _order_event_row, _order_event),
        RecordKind(FillRecord, "fills", "ts", _fill_row, _fill),
        RecordKind(RoundTripRecord, "round_trips", "exit_ts", _round_trip_row, _round_trip),
        RecordKind(BreakerRecord, "breaker_events", "ts", _breaker_row, _breaker),
        RecordKind(OperatorRecord, "operator_commands", "ts", _operator_row, _operator),
    )
}
"""Every journal record kind (``application.queries.RECORD_KINDS``), by its (final) type."""

BARS_TABLE = "bars"
"""Where recorded bars go: not a journal record, so not in :data:`RECORDS`."""


def item_row(item: JournalItem) -> tuple[str, Row]:
    """The table an item goes to and its row."""
    if isinstance(item, RecordedBar):
        return BARS_TABLE, _bar_row(item)
    if isinstance(item, NumberedCommand):
        return RECORDS[OperatorRecord].table, _operator_row(item.record, item.occurrence)
    kind = RECORDS.get(type(item))
    if kind is None:
        raise SerializationError(f"not a journal item: {item!r}")
    return kind.table, kind.to_row(item)


# -- exact JSON ---------------------------------------------------------------------------------

_TYPE = "$type"
_JSON_TYPES: dict[str, type[Any]] = {kind.json_tag: kind.type for kind in RECORDS.values()}


def to_json(value: Any) -> Any:
    """A JSON-able form of a domain value (dataclasses tagged with their type name)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SerializationError(f"cannot store the non-finite float {value!r}")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SerializationError(f"cannot store the non-finite Decimal {value!r}")
        return str(value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise SerializationError(f"cannot store the naive datetime {value!r}")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise SerializationError(f"only str-keyed mappings have a JSON form: {value!r}")
        return {k: to_json(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {_TYPE: type(value).__name__}
        for f in fields(value):
            if f.init:
                out[f.name] = to_json(getattr(value, f.name))
        return out
    raise SerializationError(f"no JSON form for {type(value).__name__}: {value!r}")


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def from_json(tp: Any, data: Any, where: str = "value") -> Any:
    """Decode ``data`` (from :func:`to_json`) as type ``tp``, checking every field."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            if len(members) < len(get_args(tp)):
                return None
            raise SerializationError(f"{where}: null where {tp} is required")
        if len(members) == 1:
            return from_json(members[0], data, where)
        tag = data.get(_TYPE) if isinstance(data, dict) else None
        for member in members:
            if getattr(member, "__name__", None) == tag:
                return from_json(member, data, where)
        raise SerializationError(f"{where}: {tag!r} is none of {tp}")
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(data, list):
            raise SerializationError(f"{where}: expected a list, got {data!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise SerializationError(f"{where}: expected {len(args)} items, got {len(data)}")
        return tuple(
            from_json(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, data, strict=True))
        )
    if origin is dict:
        key_type, value_type = get_args(tp)
        if key_type is not str or not isinstance(data, dict):
            raise SerializationError(f"{where}: expected a mapping of str for {tp}, got {data!r}")
        return {k: from_json(value_type, v, f"{where}[{k!r}]") for k, v in data.items()}
    if tp is typing.Any:
        raise SerializationError(f"{where}: untyped field")
    return _scalar(tp, data, where)


def _scalar(tp: Any, data: Any, where: str) -> Any:
    if tp is bool:
        if isinstance(data, bool):
            return data
    elif tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif tp is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
    elif tp is str:
        if isinstance(data, str):
            return data
    elif tp is Decimal:
        if isinstance(data, str):
            try:
                number = Decimal(data)
            except InvalidOperation:
                pass
            else:
                if number.is_finite():
                    return number
    elif tp is datetime:
        if isinstance(data, str):
            try:
                instant = datetime.fromisoformat(data)
            except ValueError:
                pass
            else:
                if instant.utcoffset() is not None:
                    return instant.astimezone(UTC)
    elif tp is date:
        if isinstance(data, str):
            try:
                return date.fromisoformat(data)
            except ValueError:
                pass
    elif isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            pass
    elif isinstance(tp, type) and is_dataclass(tp):
        return _dataclass(tp, data, where)
    else:
        raise SerializationError(f"{where}: no JSON decoding for type {tp!r}")
    raise SerializationError(f"{where}: {data!r} is not a valid {getattr(tp, '__name__', tp)}")


def _dataclass(tp: type[Any], data: Any, where: str) -> Any:
    name = tp.__name__
    if not isinstance(data, dict):
        raise SerializationError(f"{where}: expected a {name} object, got {data!r}")
    tag = data.get(_TYPE)
    if tag is not None and tag != name:
        raise SerializationError(f"{where}: expected a {name}, got a {tag}")
    hints = _hints(tp)
    wanted = {f.name for f in fields(tp) if f.init}
    extra = set(data) - wanted - {_TYPE}
    if extra:
        raise SerializationError(f"{where}: unknown fields {sorted(extra)} for {name}")
    # A field with a default may be missing: a record or snapshot written before it existed.
    optional = {
        f.name for f in fields(tp) if f.default is not MISSING or f.default_factory is not MISSING
    }
    missing = wanted - set(data) - optional
    if missing:
        raise SerializationError(f"{where}: {name} is missing {sorted(missing)}")
    kwargs = {k: from_json(hints[k], data[k], f"{where}.{k}") for k in wanted if k in data}
    try:
        return tp(**kwargs)
    except ValueError as exc:  # the domain's own validation (DomainError is a ValueError)
        raise SerializationError(f"{where}: {exc}") from exc


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def item_to_json(item: JournalItem) -> str:
    """One spool line (no newline)."""
    if isinstance(item, RecordedBar):
        b = item.bar
        return _dumps(
            {
                _TYPE: "RecordedBar",
                "contract": item.contract,
                "epoch": b.epoch,
                "seconds": b.seconds,
                "ohlc": [b.open, b.high, b.low, b.close],
                "volume": b.volume,
            }
        )
    if isinstance(item, NumberedCommand):
        return _dumps(
            {
                _TYPE: "NumberedCommand",
                "occurrence": item.occurrence,
                "record": to_json(item.record),
            }
        )
    return _dumps(to_json(item))


def item_from_json(line: str) -> JournalItem:
    """The item a spool line holds; :class:`SerializationError` if it holds none."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"not JSON: {exc}") from exc
    tag = data.get(_TYPE) if isinstance(data, dict) else None
    if tag == "RecordedBar":
        try:
            o, h, low, c = data["ohlc"]
            bar = Bar.at_epoch(data["epoch"], data["seconds"], o, h, low, c, data["volume"])
            return RecordedBar(str(data["contract"]), bar)
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError(f"bad recorded bar {line!r}: {exc}") from exc
    if tag == "NumberedCommand":
        occurrence = data.get("occurrence")
        if not isinstance(occurrence, int) or isinstance(occurrence, bool) or occurrence < 0:
            raise SerializationError(f"bad command occurrence in {line!r}")
        command = from_json(OperatorRecord, data.get("record"), "NumberedCommand.record")
        return NumberedCommand(command, occurrence)
    kind = _JSON_TYPES.get(tag) if isinstance(tag, str) else None
    if kind is None:
        raise SerializationError(f"unknown journal item type {tag!r}")
    decoded: JournalItem = from_json(kind, data, tag or "item")
    return decoded


def snapshot_to_json(snapshot: EngineSnapshot) -> str:
    return _dumps({"format": SNAPSHOT_FORMAT, "snapshot": to_json(snapshot)})


def snapshot_from_json(text: str) -> EngineSnapshot:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"stored engine snapshot is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise SerializationError(
            f"stored engine snapshot has format {found!r}; this code reads format {SNAPSHOT_FORMAT}"
        )
    snapshot: EngineSnapshot = from_json(EngineSnapshot, data.get("snapshot"), "snapshot")
    return snapshot


def resume_to_json(resume: ResumePoint) -> str:
    """A resume point as JSON; closes keep their exact float repr."""
    return json.dumps(
        {
            "next_bar_epoch": resume.next_bar_epoch,
            "closes": [repr(c) for c in resume.closes],
            "exchange": resume.exchange,
        },
        sort_keys=True,
    )


def resume_from_json(text: str) -> ResumePoint:
    try:
        data = json.loads(text)
        epoch = data["next_bar_epoch"]
        exchange = data["exchange"]
        return ResumePoint(
            next_bar_epoch=None if epoch is None else int(epoch),
            closes=tuple(float(c) for c in data["closes"]),
            exchange=None if exchange is None else str(exchange),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SerializationError(f"unreadable resume point: {exc}") from exc
