"""Replay parity: re-run one recorded paper session and compare it with what was recorded.

The audit: the quotes a paper session recorded in the warehouse, fed again through the very
same decision code (strategy, RiskGuard, PaperBroker with the same config), must reproduce
the session's orders and fills exactly. Any difference means the code or the config changed
the decisions, or the warehouse no longer holds what was traded.

Why this steps intervals the way the paper flow does, not bars the way `engine` does: the
bar engine decides through `Strategy.prepare/decide` on a [T x N] panel and fills on bar
prices, while a paper interval decides through `Strategy.generate` on quotes and fills on
bid/ask. Parity is only meaningful on the paper path, so the replay drives the step functions
of `papertrade.interval` (`run_strategy`, `risk_check`, `simulate_fills`) in memory, never
writing, with every input as the paper run saw it:

- quotes: the interval's recorded cross-section with its recorded `valid`/`flag_reason`
  (`RecordedMarket`); nothing is fetched or validated again;
- history: `interval.load_history` bounded by the interval, i.e. the recorded warm-up bars
  and the mids of earlier recorded valid quotes;
- broker: the state as it stood before the session's first interval
  (`load_broker_state(..., before=...)`), then carried forward by the replay itself; between
  intervals it is rebuilt from its snapshot reduced to what the warehouse keeps, because the
  paper flow restores its broker from the warehouse at every interval;
- trading state and equity marks (session start, running peak): as recorded before each
  interval, the inputs the portfolio guards saw.

Orders are compared on client_order_id, order_id, symbol, side, type, time in force,
quantity, limit/stop, status, filled quantity, average fill price and reject reason; fills on
(order's client id, ts, n-th fill) with symbol, side, quantity, price and commission. Floats
must be bit-equal: DuckDB DOUBLE and JSON round-trip float64 exactly, and the replay performs
the same operations in the same order. An order a later session changed again is compared
on the fields fixed at its creation only, since the table keeps its latest state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from paper_broker.broker import PaperBroker
from paper_broker.records import BrokerState, Fill, Order
from papertrade import interval
from papertrade.accounts import account_kind
from papertrade.calendar import MarketCalendar
from papertrade.errors import UserError
from papertrade.settings import Settings
from papertrade.wiring import broker_config_from_settings
from strategies.registry import load_strategy

# order fields fixed when the order is created, and those its life changes
ORDER_STATIC = (
    "order_id", "symbol", "side", "order_type", "time_in_force", "quantity", "limit_price",
    "stop_price",
)  # fmt: skip
ORDER_DYNAMIC = ("status", "filled_quantity", "avg_fill_price", "reject_reason")
FILL_FIELDS = ("symbol", "side", "quantity", "price", "commission")
_RECORDED_QUOTE_COLUMNS = (
    "symbol", "bid", "ask", "bid_size", "ask_size", "last", "volume", "quote_ts", "provider",
    "valid", "flag_reason",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement. `kind` is 'order' or 'fill'; `key` the order's client id (for a
    fill `client_order_id@ts#n`); `field` the column, or 'presence' when one side lacks the
    row (then `recorded`/`replayed` say 'present'/'absent')."""

    kind: str
    key: str
    field: str
    recorded: Any
    replayed: Any

    def as_dict(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class ReplayReport:
    """The audit of one session: how many recorded orders and fills were compared, and
    every difference (none when the session was reproduced)."""

    account_id: str
    session_date: date
    intervals: list[datetime]
    n_orders: int
    n_fills: int
    differences: list[Difference] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "session_date": self.session_date.isoformat(),
            "n_intervals": len(self.intervals),
            "n_orders": self.n_orders,
            "n_fills": self.n_fills,
            "differences": [d.as_dict() for d in self.differences],
        }


class RecordedMarket:
    """A `MarketDataProvider` answering from what a paper account recorded.

    `quotes(symbols, as_of)` returns the cross-section recorded at exactly `as_of`, with the
    recorded `valid` and `flag_reason` columns: requested symbols in the order asked, then
    any other recorded symbol in name order, which is the order validation produced. An
    interval that recorded nothing answers an empty frame. `bars` answers the recorded
    warm-up bars in [start, end]."""

    name = "recorded"

    def __init__(self, quotes: pd.DataFrame, bars: pd.DataFrame | None = None) -> None:
        self._by_as_of = {
            pd.Timestamp(ts).to_pydatetime(): frame.drop(columns="as_of").reset_index(drop=True)
            for ts, frame in quotes.groupby("as_of", sort=True)
        }
        self._columns = [c for c in quotes.columns if c != "as_of"]
        self._bars = bars if bars is not None else pd.DataFrame()

    @classmethod
    def from_warehouse(
        cls, conn: Any, account_id: str, start: datetime, end: datetime
    ) -> RecordedMarket:
        """The account's quotes recorded in [start, end] and all its warm-up bars, read
        with one query each."""
        quotes = conn.execute(
            f"SELECT as_of, {', '.join(_RECORDED_QUOTE_COLUMNS)} FROM quotes "
            "WHERE account_id = ? AND as_of BETWEEN ? AND ? ORDER BY as_of, symbol",
            [account_id, start, end],
        ).df()
        quotes["as_of"] = pd.to_datetime(quotes["as_of"], utc=True)
        quotes["quote_ts"] = pd.to_datetime(quotes["quote_ts"], utc=True)
        quotes["valid"] = quotes["valid"].astype("boolean").fillna(False).astype(bool)
        quotes["flag_reason"] = (
            quotes["flag_reason"].astype(object).where(quotes["flag_reason"].notna(), None)
        )
        bars = conn.execute(
            "SELECT timestamp, symbol, open, high, low, close, volume FROM bars "
            "WHERE account_id = ? ORDER BY timestamp, symbol",
            [account_id],
        ).df()
        bars["timestamp"] = pd.to_datetime(bars["timestamp"], utc=True)
        return cls(quotes, bars)

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        frame = self._by_as_of.get(as_of.astimezone(UTC))
        if frame is None:
            return pd.DataFrame(columns=self._columns)
        rank = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
        asked = frame["symbol"].map(rank).fillna(len(rank)).to_numpy()
        order = np.lexsort((frame["symbol"].to_numpy(dtype=object), asked))
        return frame.iloc[order].reset_index(drop=True)

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame:
        if self._bars.empty:
            return self._bars
        b = self._bars
        keep = b["symbol"].isin(list(symbols)) & (b["timestamp"] >= start) & (b["timestamp"] <= end)
        return b[keep].reset_index(drop=True)

    def close(self) -> None:
        return None


@dataclass
class Replayed:
    """What the replay produced: every order it created or changed (latest state, by
    client order id), its fills in order, and order_id -> client_order_id for all orders
    the broker knew."""

    orders: dict[str, Order]
    fills: list[Fill]
    client_ids: dict[str, str]


def replay_session(
    conn: Any, settings: Settings, session_date: date, *, calendar: MarketCalendar | None = None
) -> ReplayReport:
    """Replay `settings.account.id`'s recorded intervals of `session_date` and compare.

    `conn` is an open warehouse connection (read-only is enough: nothing is written).
    Raises `UserError` when the account is unknown, is a backtest's, or recorded no
    interval that session."""
    account = settings.account.id
    check_paper_account(conn, account)
    times = _session_intervals(conn, account, session_date)
    if not times:
        raise UserError(f"account {account!r} recorded no interval in session {session_date}")
    replayed = replay_intervals(conn, settings, times, calendar=calendar)
    orders, fills, differences = compare_with_record(conn, account, times, replayed)
    return ReplayReport(account, session_date, times, orders, fills, differences)


def check_paper_account(conn: Any, account: str) -> None:
    """Raise `UserError` for an unknown account, and for a backtest's: it has bars, not
    intervals, and its recorded config is the backtest's options, not settings."""
    kind = account_kind(conn, account, "the warehouse")
    if kind != "paper":
        raise UserError(
            f"account {account!r} is a {kind}, not a paper account: replay re-runs a "
            "recorded paper session"
        )


def replay_intervals(
    conn: Any,
    settings: Settings,
    times: Sequence[datetime],
    *,
    calendar: MarketCalendar | None = None,
) -> Replayed:
    """Re-run the recorded intervals `times` (ascending, consecutive commits of the account)
    in memory; see the module docstring for where each input comes from."""
    from warehouse.state import load_broker_state
    from warehouse.trading_state import get_trading_state

    calendar = calendar or MarketCalendar.for_market(settings.market_data)
    account = settings.account.id
    symbols = settings.universe.symbols
    config = broker_config_from_settings(settings)
    first, end = times[0], times[-1]
    state = load_broker_state(conn, account, before=first)
    if state is None:
        broker = PaperBroker(account, settings.account.initial_cash, config, symbols)
    else:
        broker = PaperBroker.from_state(state, config, symbols)
    initial = state.initial_cash if state is not None else settings.account.initial_cash
    market = RecordedMarket.from_warehouse(conn, account, first, end)
    last = interval.load_account_marks(conn, account, first, None, initial).last_before
    # client id -> order id of every order replayed so far, as the `orders` table has them
    written: dict[str, str] = {}
    orders: dict[str, Order] = {}
    fills: list[Fill] = []
    for as_of in times:
        session = calendar.session_at(as_of)
        marks = interval.load_account_marks(
            conn, account, as_of, session, initial, resumed_before=as_of
        )
        history = interval.load_history(conn, account, as_of, settings.market_data.history_bars)
        run = interval.IntervalRun(
            settings=settings,
            as_of=as_of,
            session=session,
            is_last_of_session=session is not None and as_of + calendar.interval >= session.close,
            broker=broker,
            strategy=load_strategy(settings.strategy.name, settings.strategy.params),
            # rows stamped at `as_of` itself were written by this interval's own guard
            trading_state=(prior := get_trading_state(conn, account, before=as_of)).state,
            state_set_by_guard=prior.source == "guard",
            session_start_equity=marks.session_start_equity,
            peak_equity=marks.peak_equity,
            guard_start_equity=marks.guard_start_equity,
            history=history,
            previous_mids=interval.previous_mids(history, last),
            last_committed=last,
            previous_volumes=interval.previous_volumes(conn, account, last, session),
            gap=calendar.intervals_between(last, as_of) if last is not None else [],
        )
        run.quotes = market.quotes(symbols, as_of)
        interval.run_strategy(run)
        interval.risk_check(run)
        interval.simulate_fills(run)
        for o in run.orders:
            orders[o.client_order_id] = o
            written[o.client_order_id] = o.order_id
        fills.extend(run.fills)
        restored = as_warehouse_restores(broker.snapshot(), written)
        broker = PaperBroker.from_state(restored, config, symbols)
        last = as_of
    client_ids = {oid: cid for cid, oid in broker.snapshot().client_order_ids.items()}
    return Replayed(orders, fills, client_ids)


def as_warehouse_restores(state: BrokerState, extra_ids: Mapping[str, str]) -> BrokerState:
    """`state` as `load_broker_state` would give it back after a commit: the client id
    index also names the orders RiskGuard refused (written as `<cid>-risk`)."""
    return dataclasses.replace(state, client_order_ids={**state.client_order_ids, **extra_ids})


def compare_with_record(
    conn: Any, account_id: str, times: Sequence[datetime], replayed: Replayed
) -> tuple[int, int, list[Difference]]:
    """(recorded orders compared, recorded fills compared, differences)."""
    start, end = times[0], times[-1]
    rec_orders = _recorded_orders(conn, account_id, start, end, list(replayed.orders))
    rec_fills = _recorded_fills(conn, account_id, start, end)
    differences: list[Difference] = []
    in_session = 0
    for cid in sorted(set(rec_orders) | set(replayed.orders)):
        rec, rep = rec_orders.get(cid), replayed.orders.get(cid)
        touched_later = rec is not None and rec["updated_at"] > end
        if rec is not None and (rec["created_at"] >= start or not touched_later):
            in_session += 1
        if rep is None:
            if rec is not None and touched_later and rec["created_at"] < start:
                continue  # changed after the session; whether it also changed during is unknown
            differences.append(Difference("order", cid, "presence", "present", "absent"))
            continue
        if rec is None:
            differences.append(Difference("order", cid, "presence", "absent", "present"))
            continue
        fields = ORDER_STATIC if touched_later else ORDER_STATIC + ORDER_DYNAMIC
        differences.extend(_field_diffs("order", cid, fields, rec, _order_row(rep)))
    rep_fills = _keyed(
        (replayed.client_ids.get(f.order_id, f.order_id), f.ts, _fill_row(f))
        for f in replayed.fills
    )
    for key in sorted(set(rec_fills) | set(rep_fills)):
        rec_fill, rep_fill = rec_fills.get(key), rep_fills.get(key)
        if rec_fill is None or rep_fill is None:
            have = ("present", "absent") if rep_fill is None else ("absent", "present")
            differences.append(Difference("fill", key, "presence", *have))
            continue
        differences.extend(_field_diffs("fill", key, FILL_FIELDS, rec_fill, rep_fill))
    return in_session, len(rec_fills), differences


# ----------------------------------------------------------------------------- loading


def _session_intervals(conn: Any, account_id: str, session_date: date) -> list[datetime]:
    rows = conn.execute(
        "SELECT as_of FROM intervals WHERE account_id = ? AND session_date = ? ORDER BY as_of",
        [account_id, session_date],
    ).fetchall()
    return [r[0].astimezone(UTC) for r in rows]


def _recorded_orders(
    conn: Any, account_id: str, start: datetime, end: datetime, client_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Orders created or changed in [start, end], and any the replay touched."""
    columns = ("client_order_id", "created_at", "updated_at", *ORDER_STATIC, *ORDER_DYNAMIC)
    cursor = conn.execute(
        f"SELECT {', '.join(columns[:2])}, coalesce(updated_at, created_at), "
        f"{', '.join(columns[3:])} FROM orders WHERE account_id = $a AND ("
        "created_at BETWEEN $s AND $e OR coalesce(updated_at, created_at) BETWEEN $s AND $e "
        "OR list_contains($ids, client_order_id))",
        {"a": account_id, "s": start, "e": end, "ids": client_ids},
    )
    out = {}
    for r in cursor.fetchall():
        row = dict(zip(columns, r, strict=True))
        row["created_at"] = row["created_at"].astimezone(UTC)
        row["updated_at"] = row["updated_at"].astimezone(UTC)
        out[row["client_order_id"]] = row
    return out


def _recorded_fills(
    conn: Any, account_id: str, start: datetime, end: datetime
) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT coalesce(o.client_order_id, f.order_id), f.ts, f.symbol, f.side, f.quantity, "
        "f.price, f.commission FROM fills f LEFT JOIN orders o "
        "ON o.account_id = f.account_id AND o.order_id = f.order_id "
        "WHERE f.account_id = ? AND f.ts BETWEEN ? AND ? ORDER BY f.ts, f.fill_id",
        [account_id, start, end],
    ).fetchall()
    return _keyed(
        (r[0], r[1].astimezone(UTC), dict(zip(FILL_FIELDS, r[2:], strict=True))) for r in rows
    )


# ----------------------------------------------------------------------------- comparing


def _keyed(rows: Iterable[tuple[str, datetime, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Fills keyed `cid@ts#n`, n counting an order's fills at one ts in their given order."""
    out: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, datetime], int] = {}
    for cid, ts, row in rows:
        n = seen.get((cid, ts), 0)
        seen[(cid, ts)] = n + 1
        out[f"{cid}@{ts.astimezone(UTC).isoformat()}#{n}"] = row
    return out


def _order_row(o: Order) -> dict[str, Any]:
    return {name: _plain(getattr(o, name)) for name in ORDER_STATIC + ORDER_DYNAMIC}


def _fill_row(f: Fill) -> dict[str, Any]:
    return {name: _plain(getattr(f, name)) for name in FILL_FIELDS}


def _field_diffs(
    kind: str, key: str, fields: Sequence[str], rec: Mapping[str, Any], rep: Mapping[str, Any]
) -> list[Difference]:
    return [
        Difference(kind, key, name, rec[name], rep[name])
        for name in fields
        if not _same(rec[name], rep[name])
    ]


def _same(a: Any, b: Any) -> bool:
    """Exact equality; None and NaN both mean 'no value' (a NULL price)."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return bool(a == b)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _plain(v: Any) -> Any:
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, datetime):
        return v.isoformat()
    return v
