"""Backtests on the paper-trading code: bars files, the engine, sweeps and walk-forward.

`bars` loads and validates a long-format bars file into a [T x N] panel; `engine` steps a
strategy and the `PaperBroker` through it; `sweep` expands parameter grids and ranks runs;
`walk_forward` picks parameters in-sample and trades them out-of-sample; `storage` writes
runs and sweep tables to the warehouse. Nothing here imports Prefect.
"""
