"""Commission models: what an order costs in fees, in account currency.

A model states the total commission of an order that has so far filled `quantity` shares
for `notional` currency in all; the broker charges each fill the increase over what the
order was already charged. That keeps minimums and caps per order (as brokers bill them),
however many partial fills an order takes. Vectorised over arrays of orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class CommissionModel(Protocol):
    def total(self, quantity: FloatArray, notional: FloatArray) -> FloatArray:
        """Total commission of orders that filled `quantity` shares worth `notional`."""
        ...


@dataclass(frozen=True, slots=True)
class ZeroCommission:
    def total(self, quantity: FloatArray, notional: FloatArray) -> FloatArray:
        return np.zeros_like(notional)


@dataclass(frozen=True, slots=True)
class PerShareCommission:
    """Interactive Brokers style: `per_share` per share, at least `minimum` per order, at
    most `max_pct` of the order's value (the cap wins over the minimum on tiny orders)."""

    per_share: float = 0.005
    minimum: float = 1.0
    max_pct: float = 0.01

    def total(self, quantity: FloatArray, notional: FloatArray) -> FloatArray:
        raw = np.maximum(quantity * self.per_share, self.minimum)
        capped = np.minimum(raw, np.abs(notional) * self.max_pct)
        return np.where(quantity > 0, capped, 0.0)


@dataclass(frozen=True, slots=True)
class PerOrderCommission:
    """A flat `fee` per order, charged with its first fill."""

    fee: float = 1.0

    def total(self, quantity: FloatArray, notional: FloatArray) -> FloatArray:
        return np.where(quantity > 0, self.fee, 0.0)


@dataclass(frozen=True, slots=True)
class PercentCommission:
    """A fraction `rate` of the traded value (0.001 = 10 bps)."""

    rate: float = 0.001

    def total(self, quantity: FloatArray, notional: FloatArray) -> FloatArray:
        return np.abs(notional) * self.rate
