"""`mean_reversion`: trade against large deviations of price from its rolling mean.

z[t] = (close[t] - mean[t]) / std[t], mean and sample std (ddof=1) over the last `lookback`
closes including bar t. Per symbol at bar t:
- flat and z >  entry_z -> sell `qty` (open a short);
- flat and z < -entry_z -> buy `qty` (open a long);
- long and z > -exit_z, or short and z < exit_z -> close the whole position: the price has
  come back to within `exit_z` of its mean or beyond it. The exit is one-sided on purpose:
  a price that overshoots the mean in one bar has reverted more, not less, and `exit_z = 0`
  means "exit at the mean" (a band |z| < 0 would never be entered).
z is undefined (no order) before `lookback` bars, with a missing close in the window, or
over a flat window (std 0). Shorts are asked for; RiskGuard decides whether they are allowed.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from paper_broker.records import OrderIntent
from strategies.base import (
    BaseStrategy,
    Prepared,
    StrategyParams,
    build_intents,
    whole_shares,
)
from strategies.indicators import rolling_mean_std


class MeanReversionParams(StrategyParams):
    lookback: int = Field(20, ge=2, le=10_000, description="window, bars")
    entry_z: float = Field(2.0, gt=0, le=100)
    exit_z: float = Field(0.5, ge=0, le=100)
    qty: float = Field(100.0, gt=0, description="shares per entry")

    _qty_whole = field_validator("qty")(whole_shares)

    @model_validator(mode="after")
    def _exit_inside_entry(self) -> MeanReversionParams:
        if self.exit_z >= self.entry_z:
            raise ValueError(f"exit_z: must be < entry_z ({self.exit_z} >= {self.entry_z})")
        return self


class MeanReversion(BaseStrategy):
    name: ClassVar[str] = "mean_reversion"
    Params: ClassVar[type[StrategyParams]] = MeanReversionParams
    params: MeanReversionParams

    @property
    def history_needed(self) -> int:
        return self.params.lookback - 1  # the window includes the current bar

    def _prepare(
        self, values: np.ndarray, symbols: tuple[str, ...], timestamps: np.ndarray | None
    ) -> Prepared:
        mean, std = rolling_mean_std(values, self.params.lookback)
        z = values - mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z /= std
        z[std == 0] = np.nan  # a flat window has no z-score
        short = z > self.params.entry_z
        long = z < -self.params.entry_z
        exit_long = z > -self.params.exit_z
        exit_short = z < self.params.exit_z
        # every defined z exits one side, so a bar is quiet only where no z is defined
        active = (exit_long | exit_short).any(axis=1)
        signals = {
            "short": short, "long": long, "exit_long": exit_long, "exit_short": exit_short, "z": z,
        }  # fmt: skip
        return Prepared(symbols, signals, active, timestamps)

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]:
        if not prepared.active[t]:
            return []
        sig = prepared.signals
        flat = positions == 0
        go_short = sig["short"][t] & flat & tradable
        go_long = sig["long"][t] & flat & tradable
        close = (
            (sig["exit_long"][t] & (positions > 0)) | (sig["exit_short"][t] & (positions < 0))
        ) & tradable
        idx = np.flatnonzero(go_short | go_long | close)
        if idx.size == 0:
            return []
        qty = self.params.qty
        signed = np.where(go_long[idx], qty, np.where(go_short[idx], -qty, -positions[idx]))
        return build_intents(prepared.symbols, idx, signed, self.name)
