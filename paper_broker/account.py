"""The account picture: cash, equity, exposures, P&L and buying power."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Account totals in account currency, marked at the broker's current marks.

    equity = cash + positions_value; gross_exposure = sum |quantity x mark|;
    net_exposure = positions_value; equity - initial_cash = realized_pnl + unrealized_pnl
    - commissions. buying_power = max(0, equity x margin multiplier - gross exposure -
    what open orders reserve); with multiplier 1 and no shorts that is cash less open buys.
    """

    account_id: str
    cash: float
    positions_value: float
    equity: float
    gross_exposure: float
    net_exposure: float
    realized_pnl: float
    unrealized_pnl: float
    buying_power: float
    commissions: float
    initial_cash: float
