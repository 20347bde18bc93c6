"""Quote columns lined up with a universe of symbols, for the array code that decides on them
(strategies, RiskGuard)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def quote_columns(
    quotes: pd.DataFrame | None, symbols: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """bid, ask and last as float64 arrays aligned to `symbols`, NaN where a symbol has no
    quote or the column is absent. `quotes` has a `symbol` column (or index); rows with
    `valid` False are dropped; the last row of a duplicated symbol wins."""
    n = len(symbols)
    if quotes is None or len(quotes) == 0:
        return np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    frame = quotes
    if "valid" in frame.columns:
        frame = frame[frame["valid"].to_numpy(dtype=bool)]
    keys = frame["symbol"] if "symbol" in frame.columns else frame.index
    # position of each wanted symbol in the quotes (-1: no quote); the last duplicate wins
    where = {s: i for i, s in enumerate(keys.tolist())}
    rows = np.fromiter((where.get(s, -1) for s in symbols), dtype=np.intp, count=n)
    found = rows >= 0

    def column(name: str) -> np.ndarray:
        out = np.full(n, np.nan)
        if name in frame.columns:
            out[found] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)[rows[found]]
        return out

    return column("bid"), column("ask"), column("last")
