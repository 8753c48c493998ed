"""Interactive Brokers through ib_async: client, mapping, market data, broker, contracts, session."""
