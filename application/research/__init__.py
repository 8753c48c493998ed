"""Research on recorded results: objectives, significance, Monte Carlo and walk-forward figures.

Pure computations over trade lists (no I/O, no clock); the entrypoints read the files and stores.
"""
