"""What every reliability test checks after a fault: the ledger reconciles, each interval is
there once, nothing is half-written. Plain functions over a warehouse file, shared with the
soak (`tests.soak`), so the soak checks exactly what the tests check."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from papertrade.settings import Settings, load_settings

TOLERANCE = 1e-6
TABLES = (
    "accounts", "intervals", "quotes", "bars", "orders", "fills", "positions", "equity",
    "risk_events", "alerts", "trading_state",
)  # fmt: skip


def settings_for(config: Path, **updates: Any) -> Settings:
    """Settings from a test config; `updates` replace fields of sections, validated as the
    config file's would be, e.g. `warehouse={"lock_timeout_seconds": 0.2}`."""
    settings = load_settings(config)
    for section, fields in updates.items():
        current = getattr(settings, section)
        checked = type(current).model_validate({**current.model_dump(), **fields})
        settings = settings.model_copy(update={section: checked})
    return settings


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connection refused, at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def read(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(sql, list(params)).fetchall()


def table_counts(db: Path) -> dict[str, int]:
    """Rows per warehouse table; a table the schema lacks counts as absent (-1)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        present = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] if t in present else -1
            for t in TABLES
        }


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file, None when it does not exist: 'byte-identical before and after'."""
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ledger_violations(db: Path, account_id: str, initial_cash: float) -> list[str]:
    """Every way the account's books fail to reconcile, as readable lines (empty: all good).

    - cash at every equity snapshot = initial cash + the cash flows of the fills up to then
      (sells add quantity x price, buys subtract it, commissions are paid);
    - each position of the last snapshot = the sum of its signed fill quantities, and a
      symbol with fills but absent from the snapshot nets to zero;
    - equity = cash + positions value, and positions value = the snapshot's market values;
    - fills and client order ids are unique, every fill belongs to a known order."""
    problems: list[str] = []
    with duckdb.connect(str(db), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        args = {"a": account_id, "cash": initial_cash, "tol": TOLERANCE}
        rows = conn.execute(
            """
            WITH f AS (
                SELECT ts, sum(CASE side WHEN 'buy' THEN -1 ELSE 1 END * quantity * price
                               - commission) AS flow
                FROM fills WHERE account_id = $a GROUP BY ts
            )
            SELECT e.ts, e.cash,
                   $cash + coalesce((SELECT sum(flow) FROM f WHERE f.ts <= e.ts), 0) AS expected
            FROM equity e WHERE e.account_id = $a AND abs(e.cash - expected) > $tol
            """,
            args,
        ).fetchall()
        problems += [f"cash {c:.6f} != initial + fill flows {x:.6f} at {t}" for t, c, x in rows]
        rows = conn.execute(
            """
            WITH last AS (SELECT max(as_of) AS ts FROM intervals WHERE account_id = $a),
            signed AS (
                SELECT symbol, sum(CASE side WHEN 'buy' THEN 1 ELSE -1 END * quantity) AS qty
                FROM fills WHERE account_id = $a GROUP BY symbol
            ),
            held AS (
                SELECT symbol, quantity FROM positions, last
                WHERE account_id = $a AND positions.ts = last.ts
            )
            SELECT coalesce(s.symbol, h.symbol), coalesce(s.qty, 0), coalesce(h.quantity, 0)
            FROM signed s FULL JOIN held h USING (symbol)
            WHERE abs(coalesce(s.qty, 0) - coalesce(h.quantity, 0)) > $tol
            """,
            {"a": account_id, "tol": TOLERANCE},
        ).fetchall()
        problems += [f"position {s} {h} != sum of signed fills {q}" for s, q, h in rows]
        rows = conn.execute(
            """
            SELECT e.ts, e.equity, e.cash, e.positions_value,
                   coalesce((SELECT sum(market_value) FROM positions p
                             WHERE p.account_id = $a AND p.ts = e.ts), 0) AS snapshot
            FROM equity e WHERE e.account_id = $a
              AND (abs(e.equity - e.cash - e.positions_value) > $tol
                   OR abs(e.positions_value - snapshot) > $tol)
            """,
            {"a": account_id, "tol": TOLERANCE},
        ).fetchall()
        problems += [
            f"equity {eq} != cash {c} + positions {pv} (snapshot {s}) at {t}"
            for t, eq, c, pv, s in rows
        ]
        dupes = conn.execute(
            """
            SELECT 'client_order_id ' || client_order_id FROM orders WHERE account_id = $a
            GROUP BY client_order_id HAVING count(*) > 1
            UNION ALL
            SELECT 'fill ' || fill_id FROM fills WHERE account_id = $a
            GROUP BY fill_id HAVING count(*) > 1
            UNION ALL
            SELECT 'orphan fill ' || fill_id FROM fills f WHERE account_id = $a
              AND NOT EXISTS (SELECT 1 FROM orders o
                              WHERE o.account_id = f.account_id AND o.order_id = f.order_id)
            """,
            {"a": account_id},
        ).fetchall()
        problems += [f"duplicate or orphan: {d}" for (d,) in dupes]
    return problems


def interval_times(db: Path, account_id: str) -> list[datetime]:
    return [r[0] for r in read(db, "SELECT as_of FROM intervals WHERE account_id = ? "
                                   "ORDER BY as_of", [account_id])]  # fmt: skip


def fills_signature(db: Path, account_id: str) -> list[tuple[Any, ...]]:
    """The account's fills as comparable tuples (ids, time, symbol, side, qty, price): two
    warehouses that traded the same intervals the same way have equal signatures."""
    return read(
        db,
        "SELECT fill_id, order_id, ts, symbol, side, quantity, round(price, 9), "
        "round(commission, 9) FROM fills WHERE account_id = ? ORDER BY ts, fill_id",
        [account_id],
    )
