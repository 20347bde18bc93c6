from __future__ import annotations

import pytest

from paper_broker.commission import PercentCommission, PerShareCommission, ZeroCommission
from paper_broker.config import MarkSource
from paper_broker.slippage import (
    FixedBpsSlippage,
    NoSlippage,
    SpreadFractionSlippage,
    VolumeImpactSlippage,
)
from papertrade.settings import Settings
from papertrade.wiring import broker_config_from_settings


def test_defaults_map_to_ib_style_commission_and_fixed_bps_slippage() -> None:
    config = broker_config_from_settings(Settings())

    assert config.commission == PerShareCommission(0.005, 1.0, 0.01)
    assert config.slippage == FixedBpsSlippage(1.0)
    assert config.staleness_seconds == 120.0
    assert config.margin_multiplier == 1.0
    assert config.allow_short is False


@pytest.mark.parametrize(
    ("broker", "slippage", "commission"),
    [
        ({"slippage_model": "none", "commission_model": "zero"}, NoSlippage(), ZeroCommission()),
        (
            {"slippage_model": "spread_fraction", "spread_fraction": 0.25,
             "commission_model": "percent", "commission_pct": 0.002},
            SpreadFractionSlippage(0.25),
            PercentCommission(0.002),
        ),
        (
            {"slippage_model": "volume_impact", "impact_coefficient": 0.3, "mark_price": "last"},
            VolumeImpactSlippage(0.3),
            PerShareCommission(),
        ),
    ],
)  # fmt: skip
def test_models_follow_the_settings(broker: dict, slippage: object, commission: object) -> None:
    settings = Settings(broker=broker, account={"margin_multiplier": 2.0, "allow_short": True})

    config = broker_config_from_settings(settings)

    assert config.slippage == slippage
    assert config.commission == commission
    assert config.margin_multiplier == 2.0
    assert config.allow_short is True
    expected_mark = MarkSource.LAST if broker.get("mark_price") == "last" else MarkSource.MID
    assert config.mark_source is expected_mark
