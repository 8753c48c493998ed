"""A contract resolver from the static quarterly table (the ContractResolver port without a broker).

It picks the front month by the roll rule (domain.contract): the first quarterly contract whose roll
(the Globex open of the Monday of its expiry week) is still ahead. Expiries are the computed third
Fridays: good for replay and tests; the IBKR resolver takes them from the broker instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.contract import FutureContract, front_month, quarterly_contracts


class StaticContractResolver:
    def __init__(self, symbol: str = "MES") -> None:
        self._symbol = symbol

    async def front_month(self, at: datetime) -> FutureContract:
        day = at.date()
        listed = quarterly_contracts(
            self._symbol, day - timedelta(days=7), day + timedelta(days=400)
        )
        return front_month(listed, at)
