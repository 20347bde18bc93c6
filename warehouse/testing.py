"""Factories of warehouse inputs for tests and benchmarks: consistent orders, fills, states
and whole `IntervalCommit`s with deterministic ids. Not imported by production code."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from paper_broker.enums import OrderStatus, OrderType, Side, TimeInForce
from paper_broker.records import BrokerState, Fill, Order, PositionRecord
from warehouse.commit import IntervalCommit

T0 = datetime(2025, 3, 3, 14, 31, tzinfo=UTC)


def symbols(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(n)]


def quotes_frame(as_of: datetime, names: list[str], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mid = 100 + rng.random(len(names)) * 50
    return pd.DataFrame(
        {
            "symbol": names,
            "bid": mid - 0.01,
            "ask": mid + 0.01,
            "bid_size": 100.0,
            "ask_size": 100.0,
            "last": mid,
            "volume": 1e6,
            "quote_ts": pd.Series([as_of] * len(names), dtype="datetime64[us, UTC]"),
            "provider": "simulated",
            "valid": True,
            "flag_reason": None,
        }
    )


def make_order(
    n: int,
    *,
    account_id: str = "paper",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    quantity: float = 10.0,
    created_at: datetime = T0,
    status: OrderStatus = OrderStatus.ACCEPTED,
    order_type: OrderType = OrderType.MARKET,
    limit_price: float | None = None,
    filled_quantity: float = 0.0,
    avg_fill_price: float | None = None,
) -> Order:
    return Order(
        account_id=account_id,
        order_id=f"O{n:08d}",
        client_order_id=f"{account_id}-c{n:08d}",
        created_at=created_at,
        symbol=symbol,
        side=side,
        order_type=order_type,
        time_in_force=TimeInForce.DAY,
        quantity=quantity,
        limit_price=limit_price,
        status=status,
        filled_quantity=filled_quantity,
        avg_fill_price=avg_fill_price,
        updated_at=created_at,
        strategy="test",
    )


def make_fill(
    n: int,
    *,
    account_id: str = "paper",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    quantity: float = 10.0,
    price: float = 100.0,
    commission: float = 1.0,
    ts: datetime = T0,
    order_id: str | None = None,
) -> Fill:
    return Fill(
        account_id=account_id,
        fill_id=f"F{n:08d}",
        order_id=order_id or f"O{n:08d}",
        ts=ts,
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=price,
        commission=commission,
    )


def make_state(
    *,
    account_id: str = "paper",
    as_of: datetime = T0,
    cash: float = 90_000.0,
    positions: list[PositionRecord] | None = None,
    open_orders: list[Order] | None = None,
    order_seq: int = 0,
    fill_seq: int = 0,
) -> BrokerState:
    positions = positions if positions is not None else []
    open_orders = open_orders if open_orders is not None else []
    return BrokerState(
        account_id=account_id,
        initial_cash=100_000.0,
        cash=cash,
        realized_pnl=12.5,
        positions=positions,
        open_orders=open_orders,
        client_order_ids={o.client_order_id: o.order_id for o in open_orders},
        order_seq=order_seq,
        fill_seq=fill_seq,
        marks={p.symbol: p.market_price for p in positions},
        as_of=as_of,
    )


def make_commit(
    as_of: datetime = T0,
    *,
    n: int = 5,
    account_id: str = "paper",
    first_id: int = 0,
    alerts: bool = True,
) -> IntervalCommit:
    """An interval with `n` symbols: n quotes, n filled orders with one fill each, n
    positions, one open order, one risk event and (optionally) one alert."""
    names = symbols(n)
    ids = range(first_id, first_id + n)
    filled = [
        make_order(
            i,
            account_id=account_id,
            symbol=s,
            created_at=as_of,
            status=OrderStatus.FILLED,
            filled_quantity=10.0,
            avg_fill_price=100.0 + k,
        )
        for k, (i, s) in enumerate(zip(ids, names, strict=True))
    ]
    fills = [
        make_fill(i, account_id=account_id, symbol=s, ts=as_of, price=100.0 + k)
        for k, (i, s) in enumerate(zip(ids, names, strict=True))
    ]
    resting = make_order(
        first_id + n,
        account_id=account_id,
        symbol=names[0],
        created_at=as_of,
        order_type=OrderType.LIMIT,
        limit_price=90.0,
    )
    positions = [PositionRecord(s, 10.0, 100.0 + k, 0.0, 101.0 + k) for k, s in enumerate(names)]
    state = make_state(
        account_id=account_id,
        as_of=as_of,
        positions=positions,
        open_orders=[resting],
        order_seq=first_id + n + 1,
        fill_seq=first_id + n,
    )
    return IntervalCommit(
        account_id=account_id,
        as_of=as_of,
        session_date=date(as_of.year, as_of.month, as_of.day),
        state=state,
        quotes=quotes_frame(as_of, names),
        orders=filled,
        fills=fills,
        risk_events=[{"rule": "max_order_notional", "symbol": names[0], "reason": "X"}],
        alerts=[{"kind": "fills", "level": "info", "title": f"{n} fills", "text": "t"}]
        if alerts
        else None,
        committed_at=as_of + timedelta(seconds=5),
    )
