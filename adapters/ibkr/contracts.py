"""The ContractResolver port on IB: the MES contract to trade, chosen by our roll rule.

IB lists every quarterly when asked for the future without an expiry. The front month is the first
whose roll (the Globex open of the Monday of its expiry week) has not started yet, from IB's own
last trade dates; IB's continuous-future mapping is never used to decide. Orders go by conId.
"""

from __future__ import annotations

from datetime import datetime

from ib_async import Contract
from ib_async import Future as IbFuture

from adapters.ibkr.client import IbClient
from adapters.ibkr.mapping import MappingError, contract_from_details, ib_future
from domain.contract import FutureContract, front_month
from domain.errors import DomainError


class ContractError(LookupError):
    """No tradable contract: IB listed none, or none matches the configured expiry."""


class IbkrContractResolver:
    """Front month (``expiry="auto"``) or a fixed quarterly (``expiry="YYYYMM"``)."""

    def __init__(
        self,
        *,
        client: IbClient,
        symbol: str,
        exchange: str,
        currency: str,
        expiry: str = "auto",
    ) -> None:
        self._client = client
        self._symbol = symbol
        self._exchange = exchange
        self._currency = currency
        self._expiry = expiry

    async def listed(self) -> list[FutureContract]:
        """Every contract IB lists now, by expiry."""
        details = await self._client.contract_details(
            IbFuture(self._symbol, exchange=self._exchange, currency=self._currency)
        )
        contracts: list[FutureContract] = []
        for item in details:
            if item.contract is None or item.contract.secType != "FUT":
                continue
            try:
                contracts.append(contract_from_details(item))
            except (MappingError, DomainError) as exc:
                raise ContractError(f"IB sent contract details we cannot read: {exc}") from exc
        if not contracts:
            raise ContractError(
                f"IB lists no {self._symbol} future on {self._exchange} in {self._currency}"
            )
        return sorted(contracts, key=lambda c: c.expiry)

    async def front_month(self, at: datetime) -> FutureContract:
        contracts = await self.listed()
        if self._expiry != "auto":
            for contract in contracts:
                if contract.contract_month == self._expiry:
                    return contract
            listed = ", ".join(f"{c.local_symbol} ({c.contract_month})" for c in contracts)
            raise ContractError(
                f"no {self._symbol} contract expires in {self._expiry}: IB lists {listed}"
            )
        try:
            return front_month(contracts, at)
        except DomainError as exc:
            raise ContractError(str(exc)) from exc

    def ib_contract(self, contract: FutureContract) -> Contract:
        return ib_future(contract, exchange=self._exchange, currency=self._currency)
