"""The data-quality price band holds the worst fill each slippage model can make: a healthy
session is never `degraded` for the broker's own slippage."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from papertrade.dq.derived import fill_band_frame
from papertrade.end_of_day import _slippage_limit_bps
from papertrade.settings import Settings
from papertrade.wiring import slippage_model

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
MID, VOLUME = 20.0, 50_000.0


def _worst_fills(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A valid quote as wide as `max_spread_bps` allows, and a buy and a sell each taking
    `max_volume_share` of its volume, priced by the broker's slippage model (before the
    tick rounding the band allows for)."""
    half = MID * settings.market_data.max_spread_bps * 1e-4 / 2
    bid, ask = MID - half, MID + half
    qty = VOLUME * settings.broker.max_volume_share
    model = slippage_model(settings.broker)
    touch = np.array([ask, bid])
    concession = model.concession(
        touch, np.array([qty, qty]), np.array([ask - bid] * 2), np.array([VOLUME] * 2)
    )
    ts = pd.Series([T0, T0], dtype="datetime64[us, UTC]")
    fills = pd.DataFrame(
        {
            "account_id": "paper",
            "fill_id": ["buy", "sell"],
            "ts": ts,
            "symbol": "WMT",
            "side": ["buy", "sell"],
            "quantity": qty,
            "price": touch + np.array([1.0, -1.0]) * concession,
        }
    )
    quotes = pd.DataFrame(
        {"account_id": ["paper"], "symbol": ["WMT"], "as_of": ts[:1], "bid": [bid], "ask": [ask],
         "valid": [True]}
    )  # fmt: skip
    return fills, quotes


@pytest.mark.parametrize(
    "broker",
    [
        {"slippage_model": "spread_fraction", "spread_fraction": 3.0},
        {"slippage_model": "spread_fraction", "spread_fraction": 0.5},
        {"slippage_model": "volume_impact", "impact_coefficient": 0.1},
        {"slippage_model": "volume_impact", "impact_coefficient": 0.5, "max_volume_share": 0.5},
        {"slippage_model": "fixed_bps", "slippage_bps": 5.0},
        {"slippage_model": "none"},
    ],
    ids=lambda b: "-".join(str(v) for v in b.values()),
)
def test_the_band_holds_the_worst_fill_of_each_slippage_model(broker: dict) -> None:
    settings = Settings(broker=broker, market_data={"max_spread_bps": 200})
    fills, quotes = _worst_fills(settings)

    band = fill_band_frame(
        fills, quotes, slippage_bps=_slippage_limit_bps(settings), tick_size=0.0
    ).set_index("fill_id")

    buy, sell = band.loc["buy"], band.loc["sell"]
    assert buy["price"] <= buy["band_high"] + 1e-9
    assert sell["price"] >= sell["band_low"] - 1e-9
    # and not much wider than that worst fill: a price 0.5% beyond it is out
    assert buy["price"] * 1.005 > buy["band_high"]
    assert sell["price"] * 0.995 < sell["band_low"]
