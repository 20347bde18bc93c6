"""The broker core's own configuration: plain values and model objects, no settings loader
(papertrade.wiring builds one from the application's settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from paper_broker.commission import CommissionModel, PerShareCommission
from paper_broker.slippage import FixedBpsSlippage, SlippageModel


class MarkSource(StrEnum):
    """Which quote price marks positions: the mid ((bid + ask) / 2) or the last trade."""

    MID = "mid"
    LAST = "last"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """How the simulated broker fills, charges and marks.

    tick_size: fill prices are rounded to it, buys up and sells down.
    max_volume_share: a fill takes at most this share of the quote's or bar's volume
        (None: no volume cap; a volume that is NaN or 0 also imposes none).
    staleness_seconds: a quote older than this at `now` never fills.
    margin_multiplier: 1.0 is a cash account; buying power = equity x multiplier - gross
        exposure - what open orders already reserve.
    allow_short: whether a sell may take a position below zero.
    closed_order_retention: how many closed orders stay in memory so that resubmitting their
        client_order_id returns them (older ones are refused as duplicates instead).
    """

    slippage: SlippageModel = field(default_factory=FixedBpsSlippage)
    commission: CommissionModel = field(default_factory=PerShareCommission)
    tick_size: float = 0.01
    max_volume_share: float | None = 0.1
    staleness_seconds: float = 120.0
    mark_source: MarkSource = MarkSource.MID
    margin_multiplier: float = 1.0
    allow_short: bool = False
    closed_order_retention: int = 10_000
