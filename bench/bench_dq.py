"""Benchmark: the GX quality suites on a 500-symbol, 390-interval session (~195,000 quotes)
against the same rules as bare pandas boolean masks. Prints one JSON object.

Run: .venv/bin/python bench/bench_dq.py
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from paper_broker.enums import OrderStatus
from papertrade.dq import SessionFrames, derived, run_quality_checks

N_SYMBOLS = 500
N_INTERVALS = 390
N_FILLS = 2_000
INITIAL_CASH = 1_000_000.0
OPEN = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
LIMITS = {"max_spread_bps": 200.0, "staleness_seconds": 120.0, "slippage_bps": 1.0}


def make_session(seed: int = 1) -> tuple[SessionFrames, list[str], list[datetime]]:
    rng = np.random.default_rng(seed)
    symbols = [f"S{i:03d}" for i in range(N_SYMBOLS)]
    intervals = [OPEN + timedelta(minutes=i) for i in range(N_INTERVALS)]
    as_of = pd.DatetimeIndex(intervals).as_unit("us").repeat(N_SYMBOLS)
    sym = np.tile(np.array(symbols, dtype=object), N_INTERVALS)
    base = np.tile(rng.uniform(10, 500, N_SYMBOLS), N_INTERVALS)
    bid = np.round(base * (1 + rng.normal(0, 0.001, base.size)), 2)
    ask = bid + 0.01
    valid = rng.random(bid.size) > 0.001
    quotes = pd.DataFrame(
        {
            "account_id": "paper",
            "as_of": as_of,
            "symbol": sym,
            "bid": np.where(valid, bid, ask + 1.0),
            "ask": ask,
            "bid_size": 100.0,
            "ask_size": 100.0,
            "last": bid,
            "volume": 1_000.0,
            "quote_ts": as_of - pd.Timedelta(seconds=1),
            "provider": "simulated",
            "valid": valid,
            "flag_reason": np.where(valid, None, "CROSSED"),
        }
    )
    picks = quotes[quotes["valid"]].sample(N_FILLS, random_state=seed).sort_values("as_of")
    side = np.where(rng.random(N_FILLS) < 0.5, "buy", "sell")
    fills = pd.DataFrame(
        {
            "account_id": "paper",
            "fill_id": [f"f{i}" for i in range(N_FILLS)],
            "order_id": [f"o{i}" for i in range(N_FILLS)],
            "ts": picks["as_of"].to_numpy(),
            "symbol": picks["symbol"].to_numpy(),
            "side": side,
            "quantity": rng.integers(1, 100, N_FILLS).astype("float64"),
            "price": np.where(side == "buy", picks["ask"], picks["bid"]),
            "commission": 1.0,
        }
    )
    fills["ts"] = fills["ts"].astype(quotes["as_of"].dtype)
    orders = fills[["account_id", "order_id", "symbol", "side", "quantity"]].assign(
        client_order_id=fills["order_id"],
        created_at=fills["ts"],
        updated_at=fills["ts"],
        order_type="market",
        time_in_force="day",
        limit_price=np.nan,
        stop_price=np.nan,
        status="filled",
        filled_quantity=fills["quantity"],
        avg_fill_price=fills["price"],
        reject_reason=None,
    )
    held = pd.Series(derived.signed_quantity(fills), index=fills["symbol"]).groupby(level=0).sum()
    held = held[held != 0]
    last = quotes[quotes["as_of"] == intervals[-1]].set_index("symbol")
    mark = ((last["bid"] + last["ask"]) / 2).reindex(held.index)
    positions = pd.DataFrame(
        {
            "account_id": "paper",
            "ts": pd.Timestamp(intervals[-1]).as_unit("us"),
            "symbol": held.index,
            "quantity": held.to_numpy(),
            "market_value": (held * mark).to_numpy(),
        }
    )
    cash = INITIAL_CASH + derived.fill_cash_flow(fills).sum()
    pv = positions["market_value"].sum()
    equity = pd.DataFrame(
        {
            "account_id": "paper",
            "ts": pd.DatetimeIndex(intervals).as_unit("us"),
            "cash": cash,
            "positions_value": pv,
            "equity": cash + pv,
        }
    )
    iv = pd.DataFrame(
        {
            "account_id": "paper",
            "as_of": pd.DatetimeIndex(intervals).as_unit("us"),
            "status": "committed",
        }
    )
    frames = SessionFrames(
        account_id="paper",
        session_date=date(2024, 3, 4),
        session_open=OPEN,
        session_close=OPEN + timedelta(minutes=N_INTERVALS),
        quotes=quotes,
        orders=orders,
        fills=fills,
        positions=positions,
        equity=equity,
        intervals=iv,
    )
    return frames, symbols, intervals


def pandas_baseline(
    frames: SessionFrames, universe: list[str], intervals: list[datetime]
) -> dict[str, int]:
    """The same rules as boolean masks: offending-row counts per rule."""
    q = derived.quote_checks_frame(frames.quotes)
    v = q["valid"].fillna(False).astype(bool)
    o = derived.order_checks_frame(frames.orders)
    f = derived.fill_band_frame(
        frames.session_fills, frames.quotes, slippage_bps=LIMITS["slippage_bps"]
    )
    cov = derived.interval_coverage_frame(frames.intervals, intervals)
    ledger = pd.concat(
        [
            derived.cash_reconciliation_frame(
                frames.fills, frames.final_equity, initial_cash=INITIAL_CASH, tolerance=1e-6
            ),
            derived.position_reconciliation_frame(frames.fills, frames.positions, tolerance=1e-6),
            derived.equity_identity_frame(frames.equity, frames.positions, tolerance=1e-6),
        ]
    )
    masks = {
        "keys_null": q[["account_id", "as_of", "symbol"]].isna().any(axis=1),
        "key_dup": q.duplicated(["account_id", "as_of", "symbol"], keep=False),
        "universe": ~q["symbol"].isin(universe),
        "flag_reason": ~v & q["flag_reason"].isna(),
        "bid_pos": v & ~(q["bid"] > 0),
        "ask_pos": v & ~(q["ask"] > 0),
        "crossed": v & (q["ask"] < q["bid"]),
        "spread": v & (q["spread_bps"] > LIMITS["max_spread_bps"]),
        "stale": v & (q["age_seconds"] > LIMITS["staleness_seconds"]) | v & q["quote_ts"].isna(),
        "order_dup": o["order_id"].duplicated(keep=False),
        "status": ~o["status"].isin([st.value for st in OrderStatus]),
        "overfill": o["filled_quantity"] > o["quantity"],
        "limit": o["needs_limit_price"] & o["limit_price"].isna(),
        "stop": o["needs_stop_price"] & o["stop_price"].isna(),
        "fill_dup": frames.fills["fill_id"].duplicated(keep=False),
        "fill_qty": ~(f["quantity"] > 0),
        "commission": f["commission"] < 0,
        "no_quote": f["quote_as_of"].isna(),
        "band": (f["price"] < f["band_low"]) | (f["price"] > f["band_high"]),
        "gaps": ~cov["present"],
        "ledger": ledger["abs_difference"] > ledger["allowed"],
    }
    return {k: int(m.sum()) for k, m in masks.items()}


def main() -> None:
    frames, universe, intervals = make_session()

    start = time.perf_counter()
    import great_expectations  # noqa: F401

    import_seconds = time.perf_counter() - start

    def gx_run() -> list:
        return run_quality_checks(
            frames,
            universe=universe,
            expected_intervals=intervals,
            initial_cash=INITIAL_CASH,
            **LIMITS,
        )

    def best_of(fn, repeat: int) -> tuple[float, object]:
        best, out = float("inf"), None
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        return best, out

    gx_seconds, results = best_of(gx_run, 3)
    base_seconds, counts = best_of(lambda: pandas_baseline(frames, universe, intervals), 3)
    print(
        json.dumps(
            {
                "benchmark": "dq",
                "quotes": len(frames.quotes),
                "fills": len(frames.fills),
                "expectations": len(results),
                "gx_failed": sum(not r.success for r in results),
                "baseline_offending_rows": sum(counts.values()),
                "gx_import_seconds": round(import_seconds, 3),
                "gx_seconds": round(gx_seconds, 3),
                "pandas_baseline_seconds": round(base_seconds, 4),
                "ratio_gx_over_pandas": round(gx_seconds / base_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
