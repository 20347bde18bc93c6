"""RiskConfig: the limits RiskGuard enforces, as a plain frozen dataclass.

It mirrors `[risk]` in the config plus `allow_short` and `margin_multiplier` from
`[account]`; `papertrade.risk_wiring.risk_config_from_settings` builds it. Money in the
account currency, quantities in shares, percentages as fractions (0.05 = 5%).
"""

from __future__ import annotations

from dataclasses import dataclass

from paper_broker.enums import TradingState


@dataclass(frozen=True, slots=True)
class RiskConfig:
    max_order_quantity: float = 10_000
    max_order_notional: float = 50_000
    # |position after the order| x price, per symbol
    max_position_notional: float = 100_000
    max_gross_exposure: float = 200_000
    max_net_exposure: float = 150_000
    max_open_orders: int = 1_000
    max_orders_per_interval: int = 500
    restricted_symbols: frozenset[str] = frozenset()
    # a limit/stop price more than this fraction away from the quote mid is refused
    price_collar_pct: float = 0.05
    daily_loss_limit_pct: float = 0.05
    daily_loss_action: TradingState = TradingState.REDUCING
    max_drawdown_pct: float = 0.20
    max_drawdown_action: TradingState = TradingState.HALTED
    flatten_on_halt: bool = False
    allow_short: bool = False
    # buying power is at most equity x margin_multiplier - gross exposure
    margin_multiplier: float = 1.0

    def __post_init__(self) -> None:
        for action in (self.daily_loss_action, self.max_drawdown_action):
            if action not in (TradingState.REDUCING, TradingState.HALTED):
                raise ValueError(f"a guard action must be reducing or halted, got {action}")
        object.__setattr__(
            self, "restricted_symbols", frozenset(s.upper() for s in self.restricted_symbols)
        )
