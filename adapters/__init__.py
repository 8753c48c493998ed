"""Implementations of the application's ports: simulated ones for replay and tests, real ones
for production."""
