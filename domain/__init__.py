"""The trading model: pure, synchronous and deterministic.

Nothing here reads the clock, awaits, does I/O or draws random numbers: time and data come in as
arguments, decisions go out as values (see DESIGN.md section 2).
"""
