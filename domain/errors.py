"""Errors raised by the domain. Each one means "this input breaks a rule", never "the world failed"."""

from __future__ import annotations


class DomainError(ValueError):
    """A value or a request breaks a domain rule."""


class InvalidBar(DomainError):
    """A bar whose fields are inconsistent (non-finite or non-positive price, bad OHLC, ...)."""


class CalendarCoverageError(DomainError):
    """The session calendar does not cover the requested date: callers must fail closed."""
