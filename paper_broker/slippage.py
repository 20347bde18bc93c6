"""Slippage models: how far a fill lands from the touched price, per share.

Each model returns a non-negative price concession in currency per share; the broker adds it
to buys and subtracts it from sells, then rounds to the tick against the trader. All models
are vectorised over arrays of fills (one element per fill) and never raise on missing
inputs: a NaN spread or volume means "nothing to charge for", i.e. zero slippage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class SlippageModel(Protocol):
    def concession(
        self, price: FloatArray, quantity: FloatArray, spread: FloatArray, volume: FloatArray
    ) -> FloatArray:
        """Price concession per share (>= 0) for fills of `quantity` shares at reference
        `price`, given the quoted `spread` (ask - bid, NaN on bars) and traded `volume`."""
        ...


@dataclass(frozen=True, slots=True)
class NoSlippage:
    """Fills at the touched price (the ask for buys, the bid for sells, the bar price)."""

    def concession(
        self, price: FloatArray, quantity: FloatArray, spread: FloatArray, volume: FloatArray
    ) -> FloatArray:
        return np.zeros_like(price)


@dataclass(frozen=True, slots=True)
class FixedBpsSlippage:
    """A fixed fraction of the price: `bps` basis points (1 bp = 0.0001)."""

    bps: float = 1.0

    def concession(
        self, price: FloatArray, quantity: FloatArray, spread: FloatArray, volume: FloatArray
    ) -> FloatArray:
        return price * (self.bps * 1e-4)


@dataclass(frozen=True, slots=True)
class SpreadFractionSlippage:
    """A fraction of the quoted spread beyond the touch; zero where no spread is known
    (bars), or where the quote is crossed/locked."""

    fraction: float = 0.5

    def concession(
        self, price: FloatArray, quantity: FloatArray, spread: FloatArray, volume: FloatArray
    ) -> FloatArray:
        known = np.isfinite(spread) & (spread > 0)
        return np.where(known, spread, 0.0) * self.fraction


@dataclass(frozen=True, slots=True)
class VolumeImpactSlippage:
    """Square-root market impact: concession = price x coefficient x sqrt(quantity / volume).

    Trading 1% of the volume with coefficient 0.1 costs 0.1 x 0.1 = 1% of the price. Zero
    where volume is unknown or not positive: there is nothing to scale by."""

    coefficient: float = 0.1

    def concession(
        self, price: FloatArray, quantity: FloatArray, spread: FloatArray, volume: FloatArray
    ) -> FloatArray:
        known = np.isfinite(volume) & (volume > 0)
        participation = np.divide(quantity, volume, out=np.zeros_like(price), where=known)
        return price * self.coefficient * np.sqrt(participation)
