"""The ``venue`` fixture: each daemon-level test that takes it runs on the simulated exchange and on
IB Gateway (the TWS test gateway), the two venues of the one daemon (issue 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.venues import VENUES, DaemonVenue, venue_for


@pytest.fixture(params=VENUES)
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[DaemonVenue]:
    async with venue_for(request.param) as made:
        yield made
