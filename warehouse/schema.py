"""Versioned schema migrations, applied by every writer when it connects.

`schema_version` holds one row per applied migration. A migration runs in its own
transaction together with its `schema_version` row, so a crash mid-migration leaves the file
at the previous version, and the next writer applies it again. Migrations only ever add
(tables, columns, views), or rebuild a table with the same columns (v7): a file written by
an older papertrade is upgraded in place, and older readers of a newer file still find every
column they knew.

Every table carries `account_id`; times are `TIMESTAMPTZ` (connections use
`TimeZone='UTC'`); money and quantities are `DOUBLE`; enums are stored as their string values.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from warehouse import views
from warehouse.transaction import transaction


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


_V1_TABLES = (
    """
    CREATE TABLE accounts (
        account_id VARCHAR PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        initial_cash DOUBLE NOT NULL,
        kind VARCHAR NOT NULL CHECK (kind IN ('paper', 'backtest')),
        config_json VARCHAR
    )""",
    """
    CREATE TABLE intervals (
        account_id VARCHAR NOT NULL,
        as_of TIMESTAMPTZ NOT NULL,
        status VARCHAR NOT NULL CHECK (status IN ('committed', 'skipped')),
        committed_at TIMESTAMPTZ NOT NULL,
        session_date DATE,
        n_quotes INTEGER,
        n_valid_quotes INTEGER,
        n_orders INTEGER,
        n_fills INTEGER,
        n_rejections INTEGER,
        gap_intervals INTEGER,
        state_json VARCHAR,
        summary_json VARCHAR,
        PRIMARY KEY (account_id, as_of)
    )""",
    """
    CREATE TABLE quotes (
        account_id VARCHAR NOT NULL,
        as_of TIMESTAMPTZ NOT NULL,
        symbol VARCHAR NOT NULL,
        bid DOUBLE, ask DOUBLE, bid_size DOUBLE, ask_size DOUBLE, last DOUBLE, volume DOUBLE,
        quote_ts TIMESTAMPTZ,
        provider VARCHAR,
        valid BOOLEAN,
        flag_reason VARCHAR,
        PRIMARY KEY (account_id, as_of, symbol)
    )""",
    """
    CREATE TABLE bars (
        account_id VARCHAR NOT NULL,
        timestamp TIMESTAMPTZ NOT NULL,
        symbol VARCHAR NOT NULL,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE,
        PRIMARY KEY (account_id, timestamp, symbol)
    )""",
    """
    CREATE TABLE orders (
        account_id VARCHAR NOT NULL,
        order_id VARCHAR NOT NULL,
        client_order_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        symbol VARCHAR NOT NULL,
        side VARCHAR NOT NULL,
        order_type VARCHAR NOT NULL,
        time_in_force VARCHAR NOT NULL,
        quantity DOUBLE NOT NULL,
        limit_price DOUBLE,
        stop_price DOUBLE,
        status VARCHAR NOT NULL,
        filled_quantity DOUBLE NOT NULL,
        avg_fill_price DOUBLE,
        reject_reason VARCHAR,
        updated_at TIMESTAMPTZ,
        strategy VARCHAR,
        stop_triggered BOOLEAN,
        PRIMARY KEY (account_id, order_id),
        UNIQUE (account_id, client_order_id)
    )""",
    """
    CREATE TABLE fills (
        account_id VARCHAR NOT NULL,
        fill_id VARCHAR NOT NULL,
        order_id VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        symbol VARCHAR NOT NULL,
        side VARCHAR NOT NULL,
        quantity DOUBLE NOT NULL,
        price DOUBLE NOT NULL,
        commission DOUBLE NOT NULL,
        PRIMARY KEY (account_id, fill_id)
    )""",
    """
    CREATE TABLE positions (
        account_id VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        symbol VARCHAR NOT NULL,
        quantity DOUBLE NOT NULL,
        avg_cost DOUBLE,
        market_price DOUBLE,
        market_value DOUBLE,
        unrealized_pnl DOUBLE,
        realized_pnl DOUBLE,
        PRIMARY KEY (account_id, ts, symbol)
    )""",
    """
    CREATE TABLE equity (
        account_id VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        cash DOUBLE NOT NULL,
        positions_value DOUBLE NOT NULL,
        equity DOUBLE NOT NULL,
        gross_exposure DOUBLE,
        net_exposure DOUBLE,
        realized_pnl DOUBLE,
        unrealized_pnl DOUBLE,
        PRIMARY KEY (account_id, ts)
    )""",
    """
    CREATE TABLE risk_events (
        account_id VARCHAR NOT NULL,
        event_id VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        rule VARCHAR,
        symbol VARCHAR,
        reason VARCHAR,
        detail VARCHAR,
        value DOUBLE,
        limit_value DOUBLE,
        state_before VARCHAR,
        state_after VARCHAR,
        PRIMARY KEY (account_id, event_id)
    )""",
    """
    CREATE TABLE trading_state (
        account_id VARCHAR NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        state VARCHAR NOT NULL CHECK (state IN ('active', 'reducing', 'halted')),
        reason VARCHAR,
        source VARCHAR NOT NULL CHECK (source IN ('guard', 'manual')),
        PRIMARY KEY (account_id, ts)
    )""",
    """
    CREATE TABLE alerts (
        account_id VARCHAR NOT NULL,
        alert_id VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        kind VARCHAR NOT NULL CHECK (
            kind IN ('fills', 'risk', 'kill_switch', 'data_quality', 'summary', 'gap')),
        level VARCHAR NOT NULL CHECK (level IN ('info', 'warning', 'critical')),
        title VARCHAR,
        text VARCHAR,
        payload_json VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('pending', 'sent', 'printed', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error VARCHAR,
        sent_at TIMESTAMPTZ,
        slack_ts VARCHAR,
        PRIMARY KEY (account_id, alert_id)
    )""",
    """
    CREATE TABLE dq_results (
        account_id VARCHAR NOT NULL,
        session_date DATE NOT NULL,
        run_at TIMESTAMPTZ NOT NULL,
        suite VARCHAR NOT NULL,
        expectation VARCHAR NOT NULL,
        success BOOLEAN NOT NULL,
        observed_value VARCHAR,
        unexpected_count BIGINT,
        sample_json VARCHAR,
        PRIMARY KEY (account_id, session_date, suite, expectation)
    )""",
    """
    CREATE TABLE daily_performance (
        account_id VARCHAR NOT NULL,
        session_date DATE NOT NULL,
        equity DOUBLE,
        daily_return DOUBLE,
        cumulative_return DOUBLE,
        cagr DOUBLE,
        volatility DOUBLE,
        sharpe DOUBLE,
        sortino DOUBLE,
        max_drawdown DOUBLE,
        max_drawdown_duration INTEGER,
        calmar DOUBLE,
        n_trades INTEGER,
        win_rate DOUBLE,
        profit_factor DOUBLE,
        avg_win DOUBLE,
        avg_loss DOUBLE,
        expectancy DOUBLE,
        turnover DOUBLE,
        avg_gross_exposure DOUBLE,
        status VARCHAR CHECK (status IN ('ok', 'degraded')),
        PRIMARY KEY (account_id, session_date)
    )""",
)

V6_MARKER_COLUMNS = (
    "n_positions INTEGER", "n_risk_events INTEGER", "n_alerts INTEGER", "pending_alerts INTEGER",
    "initial_cash DOUBLE", "cash DOUBLE", "realized_pnl DOUBLE", "commissions DOUBLE",
    "order_seq BIGINT", "fill_seq BIGINT", "open_order_ids VARCHAR[]", "day_pnl DOUBLE",
    "gross_exposure DOUBLE", "trading_state VARCHAR",
)  # fmt: skip

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "base schema: tables and the equity, order and position views",
        (
            *_V1_TABLES,
            views.EQUITY_CURVE,
            views.DAILY_PNL,
            views.OPEN_ORDERS,
            views.LATEST_POSITIONS,
        ),
    ),
    Migration(
        2,
        "round_trips view; intervals.commit_ms (time spent in the commit transaction)",
        (
            "ALTER TABLE intervals ADD COLUMN IF NOT EXISTS commit_ms DOUBLE",
            views.ROUND_TRIPS,
        ),
    ),
    Migration(
        3,
        "sweep_results: one row per parameter set of a backtest sweep",
        (
            """
            CREATE TABLE IF NOT EXISTS sweep_results (
                account_id VARCHAR NOT NULL,
                sweep_id VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                strategy VARCHAR NOT NULL,
                params_json VARCHAR NOT NULL,
                metric VARCHAR NOT NULL,
                rank INTEGER NOT NULL,
                final_equity DOUBLE,
                n_fills INTEGER,
                total_return DOUBLE,
                cagr DOUBLE,
                sharpe DOUBLE,
                sortino DOUBLE,
                max_drawdown DOUBLE,
                volatility DOUBLE,
                win_rate DOUBLE,
                profit_factor DOUBLE,
                n_trades INTEGER,
                worker VARCHAR,
                PRIMARY KEY (sweep_id, params_json)
            )""",
        ),
    ),
    Migration(
        4,
        "orders.commission: the running commission of an order, so a partially filled order"
        " reloaded from the warehouse does not pay a per-order minimum twice",
        ("ALTER TABLE orders ADD COLUMN IF NOT EXISTS commission DOUBLE DEFAULT 0",),
    ),
    Migration(
        5,
        "marks: the broker's marks after each interval, one row per symbol, instead of inside"
        " intervals.state_json: every checkpoint rewrites the strings of the table's last row"
        " group, so kilobytes of JSON per interval made each commit slower than the last",
        (
            """
            CREATE TABLE IF NOT EXISTS marks (
                account_id VARCHAR NOT NULL,
                as_of TIMESTAMPTZ NOT NULL,
                symbol VARCHAR NOT NULL,
                seq INTEGER NOT NULL,
                mark DOUBLE NOT NULL,
                PRIMARY KEY (account_id, as_of, symbol)
            )""",
        ),
    ),
    Migration(
        6,
        "intervals: the broker's scalars and the commit's summary in typed columns instead of"
        " state_json and summary_json (see warehouse.marker), so cash, day P&L and the trading"
        " state are plain columns and no interval stores long strings",
        tuple(f"ALTER TABLE intervals ADD COLUMN IF NOT EXISTS {c}" for c in V6_MARKER_COLUMNS),
    ),
    Migration(
        7,
        "marks without a primary key: its rows are written only in the transaction that"
        " inserts their interval's marker, whose key already refuses a second commit; the"
        " index cost each commit 4.5 ms, and more as the table grew (14 ms at 16M rows)",
        (
            """
            CREATE TABLE marks_v7 (
                account_id VARCHAR NOT NULL,
                as_of TIMESTAMPTZ NOT NULL,
                symbol VARCHAR NOT NULL,
                seq INTEGER NOT NULL,
                mark DOUBLE NOT NULL
            )""",
            "INSERT INTO marks_v7 SELECT account_id, as_of, symbol, seq, mark FROM marks",
            "DROP TABLE marks",
            "ALTER TABLE marks_v7 RENAME TO marks",
        ),
    ),
    Migration(
        8,
        "daily_pnl keeps the dates of daily bars stamped at midnight UTC (a backtest on"
        " date-only bars) instead of moving each to the New York evening before",
        (views.DAILY_PNL,),
    ),
    Migration(
        9,
        "round_trips sums each lot's quantity x (exit - entry) price: a trade closed at its"
        " entry price without costs is exactly 0, not float noise counted as a loss",
        (views.ROUND_TRIPS,),
    ),
    Migration(
        10,
        "account_settings: the settings a paper account trades with, a row from its first"
        " interval and from each interval whose settings changed, so that a replay of a"
        " later session runs with that session's settings (accounts.config_json keeps the"
        " first only)",
        (
            """
            CREATE TABLE IF NOT EXISTS account_settings (
                account_id VARCHAR NOT NULL,
                since TIMESTAMPTZ NOT NULL,
                config_json VARCHAR NOT NULL,
                PRIMARY KEY (account_id, since)
            )""",
            """
            INSERT INTO account_settings
            SELECT account_id, created_at, config_json FROM accounts
            WHERE kind = 'paper' AND config_json IS NOT NULL
            ON CONFLICT DO NOTHING""",
        ),
    ),
    Migration(
        11,
        "equity_curve.period_return and daily_pnl.daily_return are NULL from equity at or"
        " below zero (-5 -> 2 read as -140%), as the metrics have them",
        (views.EQUITY_CURVE, views.DAILY_PNL),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    description VARCHAR
)"""


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    """The file's schema version; 0 for a file without `schema_version` (empty or new)."""
    # Asking the table itself costs a tenth of a catalog lookup in information_schema, and
    # resolves against the connection's default database, which is what a writer attached.
    # fetchall: a fetchone leaves DuckDB's result open, and the connection `connect` hands
    # out then refuses other work until it is fetched to the end
    try:
        ((version,),) = conn.execute(
            "SELECT coalesce(max(version), 0) FROM schema_version"
        ).fetchall()
    except duckdb.CatalogException:
        return 0
    return int(version)


def has_tables(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's default database holds any table or view."""
    ((n,),) = conn.execute(
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database())"
        " + (SELECT count(*) FROM duckdb_views() WHERE database_name = current_database()"
        " AND NOT internal)"
    ).fetchall()
    return bool(n)


def migrate(conn: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Apply the migrations above the file's version, up to `target` (default: all).

    Returns the version the file is at afterwards. A file newer than `target` is left alone:
    the caller decides whether that is an error (`connect` raises `SchemaTooNew` for writers).
    """
    goal = LATEST_VERSION if target is None else target
    conn.execute(_VERSION_TABLE)
    version = current_version(conn)
    for migration in MIGRATIONS:
        if version < migration.version <= goal:
            with transaction(conn):
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    [migration.version, migration.description],
                )
            version = migration.version
    return version
