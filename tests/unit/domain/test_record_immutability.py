"""``@record`` types are immutable where it is enforced: in the type checker (see domain/record.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mypy import api

from domain.events import OrderAccepted
from domain.events import OrderCancelled as OrderCancelledLike


def test_the_type_checker_rejects_assigning_to_a_record(tmp_path: Path) -> None:
    snippet = tmp_path / "mutate.py"
    snippet.write_text(
        "from datetime import UTC, datetime\n"
        "from domain.events import OrderAccepted\n"
        "event = OrderAccepted('k', datetime.now(UTC))\n"
        "event.key = 'other'\n"
    )
    out, _err, status = api.run(
        [str(snippet), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
    )
    assert status == 1
    assert 'Property "key" defined in "OrderAccepted" is read-only' in out


def test_records_compare_and_hash_by_value() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert OrderAccepted("k", at) == OrderAccepted("k", at)
    assert hash(OrderAccepted("k", at)) == hash(OrderAccepted("k", at))
    accepted: object = OrderAccepted("k", at)
    assert accepted != OrderCancelledLike("k", at)  # equal fields, different types: not equal
