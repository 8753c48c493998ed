"""Processes a user runs (CLI, replay, daemon), their settings and the composition root."""
