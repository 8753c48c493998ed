"""``quant-scalper sweep``: many replays of one bar series, on a process pool, Dask or Ray."""
