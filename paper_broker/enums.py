"""The broker's vocabulary. String enums so records serialise to the warehouse as-is."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells: the sign of the position change."""
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_open(self) -> bool:
        return self in _OPEN


_OPEN = frozenset({OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})


class TradingState(StrEnum):
    """The kill switch: ACTIVE trades, REDUCING only lets exposure shrink, HALTED stops all."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class RejectReason(StrEnum):
    """Reason codes of rejected orders; a rejection is a value, never an exception."""

    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    MISSING_LIMIT_PRICE = "MISSING_LIMIT_PRICE"
    MISSING_STOP_PRICE = "MISSING_STOP_PRICE"
    INSUFFICIENT_BUYING_POWER = "INSUFFICIENT_BUYING_POWER"
    SHORT_SELLING_NOT_ALLOWED = "SHORT_SELLING_NOT_ALLOWED"
    NO_VALID_QUOTE = "NO_VALID_QUOTE"
    FOK_NOT_FILLABLE = "FOK_NOT_FILLABLE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    ORDER_NOT_OPEN = "ORDER_NOT_OPEN"
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    # pre-trade risk rules (RiskGuard)
    QUANTITY_EXCEEDS_MAX_PER_ORDER = "QUANTITY_EXCEEDS_MAX_PER_ORDER"
    NOTIONAL_EXCEEDS_MAX_PER_ORDER = "NOTIONAL_EXCEEDS_MAX_PER_ORDER"
    POSITION_NOTIONAL_EXCEEDS_MAX = "POSITION_NOTIONAL_EXCEEDS_MAX"
    GROSS_EXPOSURE_EXCEEDS_MAX = "GROSS_EXPOSURE_EXCEEDS_MAX"
    NET_EXPOSURE_EXCEEDS_MAX = "NET_EXPOSURE_EXCEEDS_MAX"
    MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"
    MAX_ORDERS_PER_INTERVAL = "MAX_ORDERS_PER_INTERVAL"
    RESTRICTED_SYMBOL = "RESTRICTED_SYMBOL"
    PRICE_OUTSIDE_COLLAR = "PRICE_OUTSIDE_COLLAR"
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
