"""Build the core's `RiskConfig` from the application settings (`[risk]` and `[account]`)."""

from __future__ import annotations

from paper_broker.enums import TradingState
from paper_broker.risk.config import RiskConfig
from papertrade.settings import Settings


def risk_config_from_settings(settings: Settings) -> RiskConfig:
    """A `RiskConfig` mirroring `settings.risk`, with `allow_short` and `margin_multiplier`
    from `settings.account`. Guard actions map by value (reducing/halted)."""
    risk, account = settings.risk, settings.account
    return RiskConfig(
        max_order_quantity=risk.max_order_quantity,
        max_order_notional=risk.max_order_notional,
        max_position_notional=risk.max_position_notional,
        max_gross_exposure=risk.max_gross_exposure,
        max_net_exposure=risk.max_net_exposure,
        max_open_orders=risk.max_open_orders,
        max_orders_per_interval=risk.max_orders_per_interval,
        restricted_symbols=frozenset(risk.restricted_symbols),
        price_collar_pct=risk.price_collar_pct,
        daily_loss_limit_pct=risk.daily_loss_limit_pct,
        daily_loss_action=TradingState(risk.daily_loss_action.value),
        max_drawdown_pct=risk.max_drawdown_pct,
        max_drawdown_action=TradingState(risk.max_drawdown_action.value),
        flatten_on_halt=risk.flatten_on_halt,
        allow_short=account.allow_short,
        margin_multiplier=account.margin_multiplier,
    )
