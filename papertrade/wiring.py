"""Builds the broker core's configuration from the application's settings.

The core (paper_broker) knows nothing of papertrade's settings; this is the one place that
translates `[broker]`, `[account]` and `[market_data]` keys into a `BrokerConfig`."""

from __future__ import annotations

from paper_broker.commission import (
    CommissionModel,
    PercentCommission,
    PerOrderCommission,
    PerShareCommission,
    ZeroCommission,
)
from paper_broker.config import BrokerConfig, MarkSource
from paper_broker.slippage import (
    FixedBpsSlippage,
    NoSlippage,
    SlippageModel,
    SpreadFractionSlippage,
    VolumeImpactSlippage,
)
from papertrade.settings import (
    BrokerSettings,
    CommissionModelName,
    Settings,
    SlippageModelName,
)


def slippage_model(broker: BrokerSettings) -> SlippageModel:
    name = broker.slippage_model
    if name is SlippageModelName.NONE:
        return NoSlippage()
    if name is SlippageModelName.FIXED_BPS:
        return FixedBpsSlippage(broker.slippage_bps)
    if name is SlippageModelName.SPREAD_FRACTION:
        return SpreadFractionSlippage(broker.spread_fraction)
    return VolumeImpactSlippage(broker.impact_coefficient)


def commission_model(broker: BrokerSettings) -> CommissionModel:
    name = broker.commission_model
    if name is CommissionModelName.ZERO:
        return ZeroCommission()
    if name is CommissionModelName.PER_SHARE:
        return PerShareCommission(
            broker.commission_per_share, broker.commission_min, broker.commission_max_pct
        )
    if name is CommissionModelName.PER_ORDER:
        return PerOrderCommission(broker.commission_per_order)
    return PercentCommission(broker.commission_pct)


def broker_config_from_settings(settings: Settings) -> BrokerConfig:
    """The broker's fill, cost, margin and staleness rules as the settings choose them."""
    broker = settings.broker
    return BrokerConfig(
        slippage=slippage_model(broker),
        commission=commission_model(broker),
        tick_size=broker.tick_size,
        max_volume_share=broker.max_volume_share,
        staleness_seconds=settings.market_data.staleness_seconds,
        mark_source=MarkSource(broker.mark_price.value),
        margin_multiplier=settings.account.margin_multiplier,
        allow_short=settings.account.allow_short,
    )
