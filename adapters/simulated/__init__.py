"""Deterministic adapters shared by the replay command and the tests: production code, not test doubles."""
