"""Cash and positions by symbol index: the accounting core, vectorised across symbols.

Positions use weighted-average cost: an increase re-averages the cost; a reduction books
realized P&L = closed quantity x (price - avg cost) x sign(position) and keeps the cost; a
fill larger than the position closes it (booking P&L) and opens the rest at the fill price;
a position at zero has no cost and no realized P&L: a symbol's realized P&L is that of
its current position (booked since it was last flat), while the account's total keeps
every close. A flat symbol has nothing in a snapshot, so keeping its P&L would make a
restored broker report a reopened position differently from one that never stopped.
Cash changes by -signed quantity x price - commission per fill, so the ledger reconciles
to: cash = initial cash + sum of fill cash flows, and equity - initial cash = realized +
unrealized P&L - commissions.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Below this a quantity is zero: float dust left by partial fills must not keep a position.
QTY_EPS = 1e-9


class Ledger:
    """Per-symbol arrays (quantity, average cost, realized P&L, mark) plus cash totals.

    Symbols get a stable index on first sight; arrays grow by doubling. `n` is the number
    of symbols known; only the first `n` elements of each array are meaningful."""

    def __init__(self, initial_cash: float, symbols: Iterable[str] = ()) -> None:
        self.initial_cash = float(initial_cash)
        self.cash = float(initial_cash)
        self.realized_total = 0.0
        self.commissions = 0.0
        self.symbols: list[str] = []
        self.index: dict[str, int] = {}
        cap = 16
        self.qty = np.zeros(cap)
        self.cost = np.zeros(cap)
        self.realized = np.zeros(cap)
        self.marks = np.full(cap, np.nan)
        # indices() remembers its last question; indices never change once given
        self._last_names: list[str] = []
        self._last_indices: IntArray = np.zeros(0, dtype=np.int64)
        for s in symbols:
            self.index_of(s)

    @property
    def n(self) -> int:
        return len(self.symbols)

    def index_of(self, symbol: str) -> int:
        i = self.index.get(symbol)
        if i is None:
            i = len(self.symbols)
            self.symbols.append(symbol)
            self.index[symbol] = i
            if i >= self.qty.shape[0]:
                self._grow(2 * self.qty.shape[0])
        return i

    def indices(self, symbols: Iterable[str]) -> IntArray:
        """The index of each symbol (registering new ones), as a read-only array.

        The last answer is kept: a broker is asked for the same universe, in the same order,
        every interval, and comparing the lists is cheaper than looking each symbol up."""
        names = symbols if isinstance(symbols, list) else list(symbols)
        if names == self._last_names:
            return self._last_indices
        get = self.index.get
        out = [get(s) for s in names]
        if None in out:
            out = [self.index_of(s) for s in names]
        arr = np.array(out, dtype=np.int64)
        arr.flags.writeable = False
        # a copy of the names: the caller may reuse its list for other symbols
        self._last_names = list(names)
        self._last_indices = arr
        return arr

    def _grow(self, cap: int) -> None:
        def grown(a: FloatArray, fill: float) -> FloatArray:
            b = np.full(cap, fill)
            b[: a.shape[0]] = a
            return b

        self.qty = grown(self.qty, 0.0)
        self.cost = grown(self.cost, 0.0)
        self.realized = grown(self.realized, 0.0)
        self.marks = grown(self.marks, np.nan)

    def apply(
        self, idx: IntArray, signed_qty: FloatArray, price: FloatArray, commission: FloatArray
    ) -> None:
        """Book fills (in order) into positions and cash. Fills of the same symbol are
        applied in rounds so each sees the position left by the one before it."""
        if idx.shape[0] == 0:
            return
        self.cash += float(-np.dot(signed_qty, price) - commission.sum())
        self.commissions += float(commission.sum())
        order = np.argsort(idx, kind="stable")
        s = idx[order]
        dup = s[1:] == s[:-1]
        if not dup.any():
            self._apply_unique(idx, signed_qty, price)
            return
        # rank of each fill among the fills of its symbol, in the original order
        starts = np.concatenate(([True], ~dup))
        pos = np.arange(s.shape[0])
        rank_sorted = pos - np.maximum.accumulate(np.where(starts, pos, 0))
        rank = np.empty_like(rank_sorted)
        rank[order] = rank_sorted
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            self._apply_unique(idx[sel], signed_qty[sel], price[sel])

    def _apply_unique(self, idx: IntArray, d: FloatArray, p: FloatArray) -> None:
        q = self.qty[idx]
        c = self.cost[idx]
        new = q + d
        increases = (q == 0) | (np.sign(q) == np.sign(d))
        closed = np.where(increases, 0.0, np.minimum(np.abs(d), np.abs(q)))
        pnl = closed * (p - c) * np.sign(q)
        flips = ~increases & (np.abs(d) > np.abs(q))
        safe_new = np.where(new == 0, 1.0, new)
        avg = np.where(increases, (q * c + d * p) / safe_new, np.where(flips, p, c))
        flat = np.abs(new) < QTY_EPS
        self.qty[idx] = np.where(flat, 0.0, new)
        self.cost[idx] = np.where(flat, 0.0, avg)
        self.realized[idx] = np.where(flat, 0.0, self.realized[idx] + pnl)
        self.realized_total += float(pnl.sum())
        marks = self.marks[idx]
        # a symbol first seen in a fill is marked at that fill until a quote arrives
        self.marks[idx] = np.where(np.isnan(marks), p, marks)

    def valuation(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(quantity, mark, avg cost) of the symbols; a missing mark falls back to cost."""
        n = self.n
        q = self.qty[:n]
        c = self.cost[:n]
        m = self.marks[:n]
        return q, np.where(np.isnan(m), c, m), c
