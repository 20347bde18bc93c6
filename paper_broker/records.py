"""Plain records that cross the core's boundary: what strategies ask for, what the broker
did, and the whole broker state as data the warehouse can persist and restore.

Units: quantities in shares (float64, always positive; the side carries the sign), prices and
money in the account currency, times tz-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from paper_broker.enums import OrderStatus, OrderType, RejectReason, Side, TimeInForce


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What a strategy wants; RiskGuard checks it, the broker turns it into an `Order`."""

    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: float | None = None
    stop_price: float | None = None
    client_order_id: str | None = None
    strategy: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An order that was refused, and why, with the numbers that decided it."""

    reason: RejectReason
    detail: str
    symbol: str = ""
    client_order_id: str | None = None
    rule: str = ""


@dataclass(slots=True)
class Order:
    """An order's full state; column names match the warehouse `orders` table."""

    account_id: str
    order_id: str
    client_order_id: str
    created_at: datetime
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: float
    limit_price: float | None = None
    stop_price: float | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_quantity: float = 0.0
    avg_fill_price: float | None = None
    reject_reason: str | None = None
    updated_at: datetime | None = None
    stop_triggered: bool = False
    strategy: str = ""
    # commission charged so far; minimums and caps apply per order across partial fills
    commission: float = 0.0

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution; column names match the warehouse `fills` table."""

    account_id: str
    fill_id: str
    order_id: str
    ts: datetime
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float

    @property
    def cash_flow(self) -> float:
        """Cash change of this fill: -signed quantity x price - commission."""
        return -self.side.sign * self.quantity * self.price - self.commission


@dataclass(frozen=True, slots=True)
class PositionRecord:
    symbol: str
    quantity: float  # signed: short < 0
    avg_cost: float
    # booked since the symbol was last flat (the account's realized P&L keeps every close)
    realized_pnl: float
    market_price: float


@dataclass(slots=True)
class BrokerState:
    """Everything needed to continue exactly where a broker stopped."""

    account_id: str
    initial_cash: float
    cash: float
    realized_pnl: float
    positions: list[PositionRecord] = field(default_factory=list)
    open_orders: list[Order] = field(default_factory=list)
    # client_order_id -> order_id of every order the broker has accepted; idempotency
    client_order_ids: dict[str, str] = field(default_factory=dict)
    order_seq: int = 0
    fill_seq: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    as_of: datetime | None = None
    commissions: float = 0.0


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """A read-only picture of the account that strategies and RiskGuard decide on.

    Quantities are signed (short < 0); exposures are in currency, gross = sum |value|,
    net = sum value, marked at `marks`."""

    cash: float
    equity: float
    buying_power: float
    gross_exposure: float
    net_exposure: float
    positions: dict[str, float] = field(default_factory=dict)
    avg_cost: dict[str, float] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    open_order_count: int = 0
    # shares the open orders may still buy / sell, by symbol (both >= 0): RiskGuard counts
    # them as if they filled, so a new order cannot pass a limit that a resting one uses up
    pending_buy: dict[str, float] = field(default_factory=dict)
    pending_sell: dict[str, float] = field(default_factory=dict)
