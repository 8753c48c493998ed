"""Builders and fixtures shared by the tests (no port implementations live here)."""
