"""The GX quality suites: clean data passes every expectation, each injected fault fails
exactly the rule it breaks, and a real warehouse file round-trips through the loader.

Importing GX takes seconds, so it happens once (module fixture) and the broken variants are
small in-memory sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from papertrade.dq import (
    DQResult,
    SessionFrames,
    dq_results_frame,
    load_session_frames,
    run_quality_checks,
)
from warehouse.connection import connect

ACCOUNT = "paper"
SESSION = date(2024, 3, 4)
OPEN = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
N_INTERVALS = 5
CLOSE = OPEN + timedelta(minutes=N_INTERVALS)
INTERVALS = [OPEN + timedelta(minutes=i) for i in range(N_INTERVALS)]
UNIVERSE = ["AAPL", "MSFT", "SPY"]
INITIAL_CASH = 100_000.0
LIMITS = {"max_spread_bps": 50.0, "staleness_seconds": 120.0, "slippage_bps": 5.0}

# --- factories --------------------------------------------------------------------------


def make_quotes() -> pd.DataFrame:
    """A quote per (interval, symbol), 2-cent spread, one second old; one crossed quote
    correctly flagged (flagged rows stay in the table)."""
    rows = []
    for i, as_of in enumerate(INTERVALS):
        for j, symbol in enumerate(UNIVERSE):
            bid = 100.0 * (j + 1) + i
            rows.append(
                {
                    "account_id": ACCOUNT,
                    "as_of": as_of,
                    "symbol": symbol,
                    "bid": bid,
                    "ask": bid + 0.02,
                    "bid_size": 100.0,
                    "ask_size": 100.0,
                    "last": bid + 0.01,
                    "volume": 1_000.0,
                    "quote_ts": as_of - timedelta(seconds=1),
                    "provider": "simulated",
                    "valid": True,
                    "flag_reason": None,
                }
            )
    rows[-1].update(bid=rows[-1]["ask"] + 1.0, valid=False, flag_reason="CROSSED")
    return _frame(rows, ["as_of", "quote_ts"])


def make_orders() -> pd.DataFrame:
    base = {
        "account_id": ACCOUNT,
        "client_order_id": None,
        "time_in_force": "day",
        "limit_price": None,
        "stop_price": None,
        "avg_fill_price": None,
        "reject_reason": None,
    }
    rows = [
        {"order_id": "o1", "symbol": "AAPL", "side": "buy", "order_type": "market",
         "quantity": 10.0, "status": "filled", "filled_quantity": 10.0},
        {"order_id": "o2", "symbol": "MSFT", "side": "sell", "order_type": "limit",
         "quantity": 5.0, "status": "filled", "filled_quantity": 5.0, "limit_price": 150.0},
        {"order_id": "o3", "symbol": "SPY", "side": "buy", "order_type": "limit",
         "quantity": 1.0, "status": "rejected", "filled_quantity": 0.0,
         "reject_reason": "MISSING_LIMIT_PRICE"},
        {"order_id": "o4", "symbol": "SPY", "side": "buy", "order_type": "stop_limit",
         "quantity": 2.0, "status": "accepted", "filled_quantity": 0.0,
         "limit_price": 310.0, "stop_price": 305.0},
    ]  # fmt: skip
    out = []
    for k, row in enumerate(rows):
        created = INTERVALS[k % N_INTERVALS]
        out.append(
            {**base, **row, "client_order_id": f"c{k}", "created_at": created,
             "updated_at": created}
        )  # fmt: skip
    return _frame(out, ["created_at", "updated_at"])


def make_fills() -> pd.DataFrame:
    """One fill from an earlier session (the ledger is cumulative) and two in this one, each
    at its interval's quote."""
    rows = [
        ("f0", "o0", OPEN - timedelta(days=1), "MSFT", "buy", 20.0, 190.0, 1.0),
        ("f1", "o1", INTERVALS[1], "AAPL", "buy", 10.0, 101.02, 1.0),
        ("f2", "o2", INTERVALS[2], "MSFT", "sell", 5.0, 202.0, 1.0),
    ]
    cols = ["fill_id", "order_id", "ts", "symbol", "side", "quantity", "price", "commission"]
    frame = pd.DataFrame(rows, columns=cols)
    frame.insert(0, "account_id", ACCOUNT)
    return _frame(frame.to_dict("records"), ["ts"])


def make_ledger(fills: pd.DataFrame, quotes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Equity per interval and the final positions snapshot, consistent with the fills."""
    signed = np.where(fills["side"] == "buy", fills["quantity"], -fills["quantity"])
    flows = -signed * fills["price"] - fills["commission"]
    last = quotes[quotes["as_of"] == INTERVALS[-1]].set_index("symbol")
    held = pd.Series(signed, index=fills["symbol"]).groupby(level=0).sum()
    held = held[held != 0]
    marks = ((last["bid"] + last["ask"]) / 2).reindex(held.index)
    positions = pd.DataFrame(
        {
            "account_id": ACCOUNT,
            "ts": INTERVALS[-1],
            "symbol": held.index,
            "quantity": held.to_numpy(),
            "avg_cost": 100.0,
            "market_price": marks.to_numpy(),
            "market_value": (held * marks).to_numpy(),
        }
    )
    equity_rows = []
    for as_of in INTERVALS:
        cash = INITIAL_CASH + flows[fills["ts"] <= as_of].sum()
        value = positions["market_value"].sum() if as_of == INTERVALS[-1] else 1_000.0
        equity_rows.append(
            {"account_id": ACCOUNT, "ts": as_of, "cash": cash, "positions_value": value,
             "equity": cash + value}
        )  # fmt: skip
    return _frame(positions.to_dict("records"), ["ts"]), _frame(equity_rows, ["ts"])


def make_intervals() -> pd.DataFrame:
    rows = [{"account_id": ACCOUNT, "as_of": t, "status": "committed"} for t in INTERVALS]
    return _frame(rows, ["as_of"])


def make_session() -> SessionFrames:
    quotes, fills = make_quotes(), make_fills()
    positions, equity = make_ledger(fills, quotes)
    return SessionFrames(
        account_id=ACCOUNT,
        session_date=SESSION,
        session_open=OPEN,
        session_close=CLOSE,
        quotes=quotes,
        orders=make_orders(),
        fills=fills,
        positions=positions,
        equity=equity,
        intervals=make_intervals(),
    )


def _frame(rows: list[dict], time_columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for col in time_columns:
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
    return frame


def check(frames: SessionFrames) -> list[DQResult]:
    return run_quality_checks(
        frames,
        universe=UNIVERSE,
        expected_intervals=INTERVALS,
        initial_cash=INITIAL_CASH,
        interval_seconds=60,
        max_jump_pct=0.25,
        **LIMITS,
    )


@pytest.fixture(scope="module")
def gx_loaded() -> None:
    pytest.importorskip("great_expectations")


@pytest.fixture(scope="module")
def clean_results(gx_loaded: None) -> list[DQResult]:
    return check(make_session())


# --- clean data -------------------------------------------------------------------------


def test_clean_session_passes_every_expectation(clean_results: list[DQResult]) -> None:
    failed = [(r.suite, r.expectation, r.observed_value) for r in clean_results if not r.success]

    assert failed == []
    assert {r.suite for r in clean_results} == {"quotes", "orders", "fills", "intervals", "ledger"}
    assert all(r.unexpected_count == 0 and r.sample == [] for r in clean_results)


def test_results_are_unique_per_suite_and_expectation(clean_results: list[DQResult]) -> None:
    keys = [(r.suite, r.expectation) for r in clean_results]

    assert len(keys) == len(set(keys))


# --- broken variants --------------------------------------------------------------------
# Each broken session carries several independent faults on distinct rows; every test below
# checks one rule caught its own fault, and one test checks nothing else failed.


def _quote_row(quotes: pd.DataFrame, as_of: datetime, symbol: str) -> int:
    return int(quotes.index[(quotes["as_of"] == as_of) & (quotes["symbol"] == symbol)][0])


def broken_market_session() -> SessionFrames:
    """Faults in quotes, orders and intervals; fills and ledger left clean."""
    s = make_session()
    q = s.quotes.copy()
    i0, i1, i2, i3 = INTERVALS[:4]
    r = _quote_row(q, i0, "AAPL")
    q.loc[r, "ask"] = q.loc[r, "bid"] - 0.5  # crossed, still valid
    r = _quote_row(q, i0, "MSFT")
    q.loc[r, "ask"] = q.loc[r, "bid"] * 1.01  # 100 bps wide
    r = _quote_row(q, i0, "SPY")
    q.loc[r, ["bid", "ask"]] = 0.0
    r = _quote_row(q, i1, "AAPL")
    q.loc[r, "quote_ts"] = i1 - timedelta(seconds=300)
    r = _quote_row(q, i1, "MSFT")
    q.loc[r, ["valid", "flag_reason"]] = [False, None]
    r = _quote_row(q, i1, "SPY")
    q.loc[r, "quote_ts"] = pd.NaT
    r = _quote_row(q, i2, "AAPL")
    q.loc[r, "quote_ts"] = i2 + timedelta(seconds=60)  # a later interval's, still valid
    r = _quote_row(q, INTERVALS[4], "AAPL")
    q.loc[r, ["bid", "ask"]] = q.loc[r, ["bid", "ask"]] * 1.5  # +50% in a minute, valid
    extra = q.loc[[_quote_row(q, i2, "SPY")]].assign(symbol="TSLA")
    dup = q.loc[[_quote_row(q, i3, "SPY")]]
    no_symbol = q.loc[[_quote_row(q, i3, "MSFT")]].assign(symbol=None, as_of=i3 + timedelta(1))
    q = pd.concat([q, extra, dup, no_symbol], ignore_index=True)

    o = s.orders.copy()
    o.loc[o["order_id"] == "o1", "status"] = "lost"
    o.loc[o["order_id"] == "o2", "filled_quantity"] = 6.0
    template = o[o["order_id"] == "o4"]
    more = pd.concat(
        [
            template.assign(order_id="o5", order_type="limit", limit_price=None, stop_price=None),
            template.assign(order_id="o6", order_type="stop", limit_price=None, stop_price=None),
            template.assign(order_id="o4"),
            template.assign(order_id="o8", quantity=0.0),
            template.assign(order_id="o9", side="hold"),
            template.assign(order_id="o10", order_type="iceberg"),
        ],
        ignore_index=True,
    )
    o = pd.concat([o, more], ignore_index=True)

    iv = s.intervals[s.intervals["as_of"] != i3]
    off_grid = iv.iloc[[0]].assign(as_of=OPEN + timedelta(seconds=30))
    iv = pd.concat([iv, off_grid], ignore_index=True)
    return replace(s, quotes=q, orders=o, intervals=iv)


def broken_book_session() -> SessionFrames:
    """Faults in fills (the ledger rebuilt from them, so it stays consistent) and then in the
    ledger itself."""
    s = make_session()
    q = s.quotes.copy()
    r = _quote_row(q, INTERVALS[3], "AAPL")
    q.loc[r, ["valid", "flag_reason"]] = [False, "STALE"]
    spy_ask = float(q.loc[_quote_row(q, INTERVALS[1], "SPY"), "ask"])
    spy_bid = float(q.loc[_quote_row(q, INTERVALS[1], "SPY"), "bid"])
    aapl_ask = float(q.loc[r, "ask"])
    # MSFT has no quote at INTERVALS[3]; f10 fills there at the previous interval's ask
    msft_ask = float(q.loc[_quote_row(q, INTERVALS[2], "MSFT"), "ask"])
    q = q.drop(index=_quote_row(q, INTERVALS[3], "MSFT")).reset_index(drop=True)

    f = s.fills.copy()
    f.loc[f["fill_id"] == "f1", "commission"] = -1.0
    t1 = INTERVALS[1]
    cols = list(f.columns)
    new = pd.DataFrame(
        [
            [ACCOUNT, "f1", "o2", INTERVALS[2], "MSFT", "sell", 1.0, 202.0, 1.0],
            [ACCOUNT, "f4", "o4", t1, "SPY", "buy", 0.0, spy_ask, 1.0],
            [ACCOUNT, "f5", "o4", t1, "SPY", "buy", 1.0, spy_ask * 1.01, 1.0],
            [ACCOUNT, "f6", "o4", t1, "SPY", "sell", 1.0, spy_bid * 0.99, 1.0],
            [ACCOUNT, "f7", "o1", INTERVALS[3], "AAPL", "buy", 1.0, aapl_ask, 1.0],
            [ACCOUNT, "f8", "o4", t1, "QQQ", "buy", 1.0, 50.0, 1.0],
            [ACCOUNT, "f9", "o4", t1, "SPY", "short", 1.0, spy_bid, 1.0],
            [ACCOUNT, "f10", "o2", INTERVALS[3], "MSFT", "buy", 1.0, msft_ask, 1.0],
        ],
        columns=cols,
    )
    new["ts"] = new["ts"].astype(f["ts"].dtype)
    f = pd.concat([f, new], ignore_index=True)
    positions, equity = make_ledger(f, q)

    last = equity.index[-1]
    equity.loc[last, ["cash", "equity"]] += 0.01
    positions.loc[positions["symbol"] == "AAPL", "quantity"] += 1.0
    equity.loc[0, "equity"] += 5.0
    return replace(s, quotes=q, fills=f, positions=positions, equity=equity)


# (suite, expectation, session, what identifies the injected row in the sample)
FAULTS: list[tuple[str, str, str, Callable[[dict], bool]]] = [
    ("quotes", "valid_ask_ge_bid", "market", lambda r: r["symbol"] == "AAPL"),
    ("quotes", "valid_spread_within_limit", "market", lambda r: r["symbol"] == "MSFT"),
    ("quotes", "valid_bid_positive", "market", lambda r: r["symbol"] == "SPY"),
    ("quotes", "valid_ask_positive", "market", lambda r: r["symbol"] == "SPY"),
    ("quotes", "valid_fresh", "market", lambda r: r["symbol"] == "AAPL"),
    ("quotes", "valid_not_ahead", "market", lambda r: r["as_of"] == INTERVALS[2].isoformat()),
    ("quotes", "valid_jump_within_limit", "market", lambda r: r["symbol"] == "AAPL"),
    ("quotes", "flagged_have_reason", "market", lambda r: r["symbol"] == "MSFT"),
    ("quotes", "valid_quote_ts_not_null", "market", lambda r: r["symbol"] == "SPY"),
    ("quotes", "symbol_in_universe", "market", lambda r: r["symbol"] == "TSLA"),
    ("quotes", "key_unique", "market", lambda r: r["symbol"] == "SPY"),
    ("quotes", "symbol_not_null", "market", lambda r: r["symbol"] is None),
    ("orders", "status_known", "market", lambda r: r["order_id"] == "o1"),
    ("orders", "filled_le_quantity", "market", lambda r: r["order_id"] == "o2"),
    ("orders", "limit_price_for_limit_orders", "market", lambda r: r["order_id"] == "o5"),
    ("orders", "stop_price_for_stop_orders", "market", lambda r: r["order_id"] == "o6"),
    ("orders", "order_id_unique", "market", lambda r: r["order_id"] == "o4"),
    ("orders", "quantity_positive", "market", lambda r: r["order_id"] == "o8"),
    ("orders", "side_known", "market", lambda r: r["order_id"] == "o9"),
    ("orders", "order_type_known", "market", lambda r: r["order_id"] == "o10"),
    ("intervals", "no_gaps", "market", lambda r: r["as_of"] == INTERVALS[3].isoformat()),
    ("intervals", "on_session_grid", "market", lambda r: r["as_of"].endswith(":30:30+00:00")),
    ("fills", "commission_non_negative", "book", lambda r: r["fill_id"] == "f1"),
    ("fills", "fill_id_unique", "book", lambda r: r["fill_id"] == "f1"),
    ("fills", "quantity_positive", "book", lambda r: r["fill_id"] == "f4"),
    ("fills", "price_le_ask_band", "book", lambda r: r["fill_id"] == "f5"),
    ("fills", "price_ge_bid_band", "book", lambda r: r["fill_id"] == "f6"),
    ("fills", "quote_valid", "book", lambda r: r["fill_id"] == "f7"),
    ("fills", "quote_exists", "book", lambda r: r["fill_id"] == "f8"),
    ("fills", "quote_exists", "book", lambda r: r["fill_id"] == "f10"),
    ("fills", "side_known", "book", lambda r: r["fill_id"] == "f9"),
    ("ledger", "cash_reconciles", "book", lambda r: abs(r["difference"] - 0.01) < 1e-9),
    ("ledger", "positions_reconcile", "book", lambda r: r["item"] == "AAPL"),
    ("ledger", "equity_identity", "book", lambda r: r["difference"] == pytest.approx(5.0)),
]


@pytest.fixture(scope="module")
def broken_results(gx_loaded: None) -> dict[str, dict[tuple[str, str], DQResult]]:
    sessions = {"market": broken_market_session(), "book": broken_book_session()}
    return {
        name: {(r.suite, r.expectation): r for r in check(frames)}
        for name, frames in sessions.items()
    }


@pytest.mark.parametrize(
    ("suite", "expectation", "session", "is_injected"),
    FAULTS,
    ids=[f"{s}.{e}" for s, e, _, _ in FAULTS],
)
def test_injected_fault_is_caught(
    broken_results: dict[str, dict[tuple[str, str], DQResult]],
    suite: str,
    expectation: str,
    session: str,
    is_injected: Callable[[dict], bool],
) -> None:
    result = broken_results[session][(suite, expectation)]

    assert not result.success
    assert result.unexpected_count >= 1
    assert 1 <= len(result.sample) <= 5
    assert any(is_injected(row) for row in result.sample), result.sample


@pytest.mark.parametrize("session", ["market", "book"])
def test_only_the_injected_rules_fail(
    broken_results: dict[str, dict[tuple[str, str], DQResult]], session: str
) -> None:
    injected = {(s, e) for s, e, where, _ in FAULTS if where == session}

    failed = {key for key, r in broken_results[session].items() if not r.success}

    assert failed == injected


def test_a_fill_without_its_quote_fails_only_quote_exists_and_counts_are_of_checked_rows(
    broken_results: dict[str, dict[tuple[str, str], DQResult]],
) -> None:
    book = broken_results["book"]
    n_fills = len(broken_book_session().session_fills)

    # f8 (QQQ) and f10 (MSFT at an interval without its quote) have no band to check
    for rule, fill_id in (("price_le_ask_band", "f5"), ("price_ge_bid_band", "f6")):
        band = book[("fills", rule)]
        assert [row["fill_id"] for row in band.sample] == [fill_id]
        assert band.observed_value == f"1 of {n_fills - 2} rows unexpected"
    assert book[("fills", "quote_exists")].observed_value == f"2 of {n_fills} rows unexpected"


# --- the warehouse round trip -----------------------------------------------------------


def _insert(conn: object, table: str, frame: pd.DataFrame) -> None:
    """Set-based insert; DuckDB finds the local frame `incoming` by name."""
    incoming = frame  # noqa: F841
    conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")  # type: ignore[attr-defined]


def write_warehouse(path: Path, frames: SessionFrames) -> None:
    """The session plus rows the loader must leave out: another account, the next session,
    and an equity/positions snapshot after the close."""
    later = timedelta(days=1)
    with connect(path) as conn:
        _insert(conn, "quotes", frames.quotes)
        _insert(conn, "quotes", frames.quotes.assign(as_of=frames.quotes["as_of"] + later))
        _insert(conn, "quotes", frames.quotes.assign(account_id="other"))
        _insert(conn, "orders", frames.orders)
        _insert(conn, "fills", frames.fills)
        _insert(conn, "fills", frames.fills.assign(account_id="other"))
        next_day = frames.fills.iloc[[1]].assign(fill_id="late", ts=frames.fills["ts"][1] + later)
        _insert(conn, "fills", next_day)
        _insert(conn, "positions", frames.positions)
        _insert(conn, "positions", frames.positions.assign(ts=CLOSE + later, quantity=1.0))
        _insert(conn, "equity", frames.equity)
        _insert(conn, "equity", frames.equity.iloc[[-1]].assign(ts=CLOSE + later, cash=0.0))
        now = datetime(2024, 3, 4, 21, 15, tzinfo=UTC)
        _insert(
            conn,
            "intervals",
            frames.intervals.assign(committed_at=now, session_date=SESSION),
        )


def test_loader_reads_exactly_the_session(tmp_path: Path) -> None:
    expected = make_session()
    path = tmp_path / "wh.duckdb"
    write_warehouse(path, expected)

    loaded = load_session_frames(path, ACCOUNT, SESSION, OPEN, CLOSE)

    assert len(loaded.quotes) == len(expected.quotes)
    assert set(loaded.quotes["account_id"]) == {ACCOUNT}
    assert sorted(loaded.fills["fill_id"]) == ["f0", "f1", "f2"]
    assert sorted(loaded.session_fills["fill_id"]) == ["f1", "f2"]
    assert sorted(loaded.orders["order_id"]) == ["o1", "o2", "o3", "o4"]
    assert loaded.final_equity["cash"].iloc[0] == pytest.approx(expected.equity["cash"].iloc[-1])
    assert sorted(loaded.positions["symbol"]) == sorted(expected.positions["symbol"])
    assert (loaded.positions["ts"] == INTERVALS[-1]).all()
    assert list(loaded.intervals["as_of"]) == INTERVALS
    assert str(loaded.quotes["as_of"].dt.tz) == "UTC"


def test_loaded_session_passes_and_results_fit_the_table(gx_loaded: None, tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    write_warehouse(path, make_session())
    frames = load_session_frames(path, ACCOUNT, SESSION, OPEN, CLOSE)
    run_at = datetime(2024, 3, 4, 21, 15, tzinfo=UTC)

    results = check(frames)
    rows = dq_results_frame(results, ACCOUNT, SESSION, run_at)
    with connect(path) as conn:
        _insert(conn, "dq_results", rows)
        stored = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT success) FROM dq_results"
        ).fetchone()

    assert [r.expectation for r in results if not r.success] == []
    assert stored == (len(results), 0)
