"""Use cases over the domain: the ports (Protocols) and the trading service that drives the engine."""
