"""Bring a paper broker back exactly as it was after its last committed interval.

The interval marker (`warehouse.marker`) holds cash, realized P&L, id counters and which
orders were open; marks come from that interval's `marks` rows (from `state_json` for intervals
committed before schema v5), positions from its `positions` snapshot, open orders from
`orders` (their latest state), and the client order id index from the orders of that
interval and every open one (each order is written in the interval that created it).

With `before`, the state is the one that stood before that instant (the last interval
committed earlier): what a replay of a recorded session starts from. The `orders` table holds
each order's latest state, so an open order that changed after that interval is rolled back
from its fills: filled quantity, average price and commission are re-accumulated in the
broker's own order (fill by fill), so they come back bit-equal.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from typing import Any

import duckdb

from paper_broker.enums import OrderStatus, OrderType, Side, TimeInForce
from paper_broker.errors import StateRestoreError
from paper_broker.records import BrokerState, Order, PositionRecord
from warehouse.frames import ORDER_COLUMNS
from warehouse.marker import TABLE_HELD_FIELDS, saved_state


def load_broker_state(
    conn: duckdb.DuckDBPyConnection,
    account_id: str,
    *,
    before: datetime | None = None,
    latest: datetime | None = None,
) -> BrokerState | None:
    """The state after `account_id`'s latest interval (by `as_of`), or None if it has none.

    `before` (tz-aware): only intervals with `as_of < before` count, and orders are taken as
    they stood then (see the module docstring); None for the latest state. `latest`: the
    latest interval's `as_of` when the caller has just read it in the same transaction,
    which saves looking it up.

    Raises `StateRestoreError` when the tables disagree with the marker (an open order or a
    position it names is missing): restoring half a broker would trade on a wrong book."""
    # find the interval by its time first, then read its marker by its key: a filter or sort
    # that touches the marker's columns would read every interval's, which grows with age
    if latest is not None and before is None:
        as_of = latest
    else:
        bound = "" if before is None else "AND as_of < ? "
        ((as_of,),) = conn.execute(
            f"SELECT max(as_of) FROM intervals WHERE account_id = ? {bound}",
            [account_id] if before is None else [account_id, before],
        ).fetchall()
    saved = saved_state(conn, account_id, as_of) if as_of is not None else None
    if saved is None:
        return None

    positions = _positions(conn, account_id, as_of, saved)
    open_orders = _orders(conn, account_id, saved["open_order_ids"])
    if before is not None:
        open_orders = _as_of(conn, account_id, open_orders, as_of)
    # The client order id index only has to recognise an id submitted again. Ids embed the
    # time of their interval (`paper_broker.ids`) and intervals are committed in time order,
    # so no later interval asks for an older one: the index names the open orders and the
    # orders of the interval itself. A day of ids cost 15 ms a load by the session's end.
    rows = conn.execute(
        "SELECT client_order_id, order_id FROM orders WHERE account_id = $a "
        "AND (created_at = $as_of OR list_contains($open, order_id)) "
        "ORDER BY created_at, order_id",
        {"a": account_id, "as_of": as_of, "open": saved["open_order_ids"]},
    ).fetchall()
    client_ids = dict(rows)
    known = {f.name for f in dataclasses.fields(BrokerState)} - TABLE_HELD_FIELDS
    scalars = {k: v for k, v in saved.items() if k in known}
    # intervals committed before schema v5 kept their marks in `state_json`
    scalars["marks"] = saved["marks"] if "marks" in saved else _marks(conn, account_id, as_of)
    scalars["as_of"] = datetime.fromisoformat(saved["as_of"]) if saved.get("as_of") else None
    scalars["account_id"] = account_id
    return BrokerState(
        **scalars,
        positions=positions,
        open_orders=open_orders,
        client_order_ids=client_ids,
    )


def _marks(conn: duckdb.DuckDBPyConnection, account_id: str, as_of: datetime) -> dict[str, float]:
    rows = conn.execute(
        "SELECT symbol, mark FROM marks WHERE account_id = ? AND as_of = ? ORDER BY seq",
        [account_id, as_of],
    ).fetchall()
    return dict(rows)


def _positions(
    conn: duckdb.DuckDBPyConnection, account_id: str, ts: datetime, saved: dict[str, Any]
) -> list[PositionRecord]:
    """The snapshot in the broker's order (the order it was inserted in). Intervals
    committed before the marker held a count named their symbols instead."""
    rows = conn.execute(
        "SELECT symbol, quantity, avg_cost, realized_pnl, market_price FROM positions "
        "WHERE account_id = ? AND ts = ? ORDER BY rowid",
        [account_id, ts],
    ).fetchall()
    found = [PositionRecord(*r) for r in rows]
    if "position_symbols" in saved:
        by_symbol = {p.symbol: p for p in found}
        missing = [s for s in saved["position_symbols"] if s not in by_symbol]
        if missing:
            raise StateRestoreError(f"{account_id} at {ts}: positions missing for {missing}")
        return [by_symbol[s] for s in saved["position_symbols"]]
    if len(found) != saved["n_positions"]:
        raise StateRestoreError(
            f"{account_id} at {ts}: the marker names {saved['n_positions']} positions, "
            f"the snapshot holds {len(found)}"
        )
    return found


def _orders(conn: duckdb.DuckDBPyConnection, account_id: str, ids: list[str]) -> list[Order]:
    if not ids:
        return []
    cursor = conn.execute(
        f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders "
        "WHERE account_id = ? AND list_contains(?, order_id)",
        [account_id, ids],
    )
    by_id = {r[1]: _order(dict(zip(ORDER_COLUMNS, r, strict=True))) for r in cursor.fetchall()}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise StateRestoreError(f"{account_id}: open orders missing from the warehouse: {missing}")
    return [by_id[i] for i in ids]


def _as_of(
    conn: duckdb.DuckDBPyConnection, account_id: str, orders: list[Order], ts: datetime
) -> list[Order]:
    """`orders` (open at `ts`) as they stood at `ts`: an order the table shows changed later
    gets its fill-driven fields back from its fills up to `ts`.

    Accumulates exactly as `PaperBroker._book` does, so the floats are the broker's own:
    filled += q; avg = (filled_before * avg_before + q * p) / filled; commission += c.
    A stop-limit order triggered before `ts` but first filled later is restored untriggered:
    the tables keep no trigger time, and a replay then shows the difference instead of
    hiding it."""
    later = [o.order_id for o in orders if o.updated_at is not None and o.updated_at > ts]
    if not later:
        return orders
    rows = conn.execute(
        "SELECT order_id, ts, quantity, price, commission FROM fills "
        "WHERE account_id = ? AND list_contains(?, order_id) AND ts <= ? ORDER BY ts, fill_id",
        [account_id, later, ts],
    ).fetchall()
    fills: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        fills.setdefault(r[0], []).append(r[1:])
    out = []
    for o in orders:
        if o.order_id not in later:
            out.append(o)
            continue
        filled, avg, commission, updated = 0.0, 0.0, 0.0, o.created_at
        for fill_ts, q, p, c in fills.get(o.order_id, []):
            done = filled
            filled = done + q
            avg = (done * avg + q * p) / filled
            commission += c
            updated = _aware(fill_ts)
        traded = filled > 0.0
        out.append(
            dataclasses.replace(
                o,
                status=OrderStatus.PARTIALLY_FILLED if traded else OrderStatus.ACCEPTED,
                filled_quantity=filled,
                avg_fill_price=avg if traded else None,
                updated_at=updated,
                commission=commission,
                stop_triggered=o.stop_triggered and traded,
            )
        )
    return out


def _order(row: dict[str, Any]) -> Order:
    return Order(
        account_id=row["account_id"],
        order_id=row["order_id"],
        client_order_id=row["client_order_id"],
        created_at=_aware(row["created_at"]),
        symbol=row["symbol"],
        side=Side(row["side"]),
        order_type=OrderType(row["order_type"]),
        time_in_force=TimeInForce(row["time_in_force"]),
        quantity=row["quantity"],
        limit_price=_num(row["limit_price"]),
        stop_price=_num(row["stop_price"]),
        status=OrderStatus(row["status"]),
        filled_quantity=row["filled_quantity"],
        avg_fill_price=_num(row["avg_fill_price"]),
        reject_reason=row["reject_reason"],
        updated_at=_aware(row["updated_at"]) if row["updated_at"] is not None else None,
        stop_triggered=bool(row["stop_triggered"]),
        strategy=row["strategy"] or "",
        commission=row["commission"] or 0.0,
    )


def _num(value: float | None) -> float | None:
    # a missing price is NULL in the table; a NaN would be a broken record, restore it as None
    return None if value is None or math.isnan(value) else value


def _aware(ts: datetime) -> datetime:
    return ts.astimezone(UTC)
