"""The object graphs of the commands that are neither the daemon nor a replay: ``ibkr-check``.

(The journal commands' graph is :class:`entrypoints.container.store.JournalStore`.)
"""

from __future__ import annotations

from dependency_injector import containers, providers

from entrypoints.container import Core, LiveAdapters, _ibkr
from entrypoints.settings import Settings


class IbkrCheck(containers.DeclarativeContainer):
    """``ibkr-check``: the live adapters' IB client and contract resolver, and the check that talks
    to IB Gateway through them (``adapters.ibkr.gateway_check``; imported when first built, so
    ib_async loads only for this command). The check journals nothing: no journal is given."""

    settings = providers.Dependency(instance_of=Settings)
    core = providers.Container(Core, settings=settings)
    adapters = providers.Container(LiveAdapters, core=core, journal=providers.Object(None))

    check = providers.Singleton(
        _ibkr("gateway_check", "IbkrGatewayCheck"),
        client=adapters.ibkr_client,
        resolver=adapters.contracts,
        symbol=settings.provided.instrument.symbol,
    )


def build_ibkr_check(settings: Settings) -> IbkrCheck:
    """The ``ibkr-check`` container for the Gateway ``settings.ibkr`` names."""
    return IbkrCheck(settings=settings)
