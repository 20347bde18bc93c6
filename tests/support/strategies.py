"""A base for the tests' scripted strategies."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from strategies.base import BaseStrategy, NoParams, Prepared, StrategyParams


class EveryBar(BaseStrategy):
    """No parameters, and `decide` is asked at every bar: a test strategy only says what
    it orders."""

    Params: ClassVar[type[StrategyParams]] = NoParams

    def _prepare(self, values: np.ndarray, symbols: tuple[str, ...], timestamps: Any) -> Prepared:
        return Prepared(symbols, {}, np.ones(values.shape[0], dtype=bool), timestamps)
