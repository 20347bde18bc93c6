"""Analytics views: the questions users ask most, as SQL they can read and extend.

- `equity_curve`: every equity snapshot with running peak, drawdown (a negative fraction) and
  the simple return since the previous snapshot (NULL after one at or below zero, as the
  metrics have it).
- `daily_pnl`: one row per account and New York calendar date: closing equity, P&L and simple
  return against the previous day's close (the account's initial cash on its first day;
  NULL from a close at or below zero).
  An account whose snapshots all fall on midnight UTC holds daily bars labelled by date
  (a bars file with `2024-01-08` for Monday's close, read as 2024-01-08T00:00Z): its rows
  keep those dates, which in New York would be the evening before (a Sunday for Monday).
- `round_trips`: closed trades. Fills are matched first-in-first-out per account and symbol;
  each closing fill yields one round trip per direction it closes, so a partial close is its
  own trade and a fill that flips long -> short closes the long (one trade) and opens a short
  lot. Entry price is the quantity-weighted price of the FIFO lots it consumed; commissions
  are charged pro rata to the matched quantity of each fill, and `pnl` is net of both sides.
- `open_orders`: orders whose latest state is new, accepted or partially filled.
- `latest_positions`: non-flat positions of each account's latest snapshot.
"""

from __future__ import annotations

# Quantities below this are float noise from cumulative sums, not shares.
_EPS = "1e-9"

EQUITY_CURVE = """
CREATE OR REPLACE VIEW equity_curve AS
SELECT
    account_id, ts, cash, positions_value, equity, gross_exposure, net_exposure,
    realized_pnl, unrealized_pnl,
    max(equity) OVER running AS peak_equity,
    equity / max(equity) OVER running - 1 AS drawdown,
    -- as in the metrics, a period from zero or negative equity has no return (-5 -> 2 is
    -- not -140%)
    CASE WHEN lag(equity) OVER previous > 0
         THEN equity / lag(equity) OVER previous - 1 END AS period_return
FROM equity
WINDOW running AS (
    PARTITION BY account_id ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
), previous AS (PARTITION BY account_id ORDER BY ts)
"""

DAILY_PNL = """
CREATE OR REPLACE VIEW daily_pnl AS
WITH stamped AS (
    -- AT TIME ZONE on both sides: the dates do not depend on the session's TimeZone
    SELECT
        *,
        bool_and((ts AT TIME ZONE 'UTC')::TIME = TIME '00:00:00')
            OVER (PARTITION BY account_id) AS date_labels
    FROM equity
), days AS (
    SELECT
        account_id,
        CASE WHEN date_labels THEN (ts AT TIME ZONE 'UTC')::DATE
             ELSE (ts AT TIME ZONE 'America/New_York')::DATE END AS session_date,
        max(ts) AS close_ts,
        arg_max(equity, ts) AS equity,
        arg_max(realized_pnl, ts) AS realized_pnl,
        arg_min(equity, ts) AS first_equity
    FROM stamped
    GROUP BY account_id, session_date
), chained AS (
    SELECT
        d.*,
        coalesce(
            lag(d.equity) OVER (PARTITION BY d.account_id ORDER BY d.session_date),
            a.initial_cash,
            d.first_equity
        ) AS prev_equity
    FROM days d LEFT JOIN accounts a USING (account_id)
)
SELECT
    account_id, session_date, close_ts, equity, prev_equity,
    equity - prev_equity AS pnl,
    CASE WHEN prev_equity > 0 THEN equity / prev_equity - 1 END AS daily_return,
    realized_pnl
FROM chained
"""

ROUND_TRIPS = f"""
CREATE OR REPLACE VIEW round_trips AS
WITH signed AS (
    SELECT
        account_id, fill_id, ts, symbol, quantity, price, commission,
        CASE WHEN side = 'buy' THEN quantity ELSE -quantity END AS signed_qty
    FROM fills
), before AS (
    SELECT
        *,
        coalesce(sum(signed_qty) OVER (
            PARTITION BY account_id, symbol ORDER BY ts, fill_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS pos_before
    FROM signed
), legs AS (
    SELECT
        *,
        CASE WHEN pos_before * signed_qty < 0
             THEN least(abs(signed_qty), abs(pos_before)) ELSE 0 END AS close_qty
    FROM before
), opens AS (
    SELECT
        account_id, symbol, fill_id, ts, price,
        commission / quantity AS fee_per_share,
        CASE WHEN signed_qty > 0 THEN 'long' ELSE 'short' END AS direction,
        quantity - close_qty AS qty
    FROM legs WHERE quantity - close_qty > {_EPS}
), closes AS (
    SELECT
        account_id, symbol, fill_id, ts, price,
        commission / quantity AS fee_per_share,
        CASE WHEN pos_before > 0 THEN 'long' ELSE 'short' END AS direction,
        close_qty AS qty
    FROM legs WHERE close_qty > {_EPS}
), open_ranges AS (
    SELECT *, sum(qty) OVER lots - qty AS lo, sum(qty) OVER lots AS hi
    FROM opens
    WINDOW lots AS (PARTITION BY account_id, symbol, direction ORDER BY ts, fill_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), close_ranges AS (
    SELECT *, sum(qty) OVER lots - qty AS lo, sum(qty) OVER lots AS hi
    FROM closes
    WINDOW lots AS (PARTITION BY account_id, symbol, direction ORDER BY ts, fill_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), matched AS (
    SELECT
        c.account_id, c.symbol, c.direction,
        c.fill_id AS exit_fill_id, c.ts AS exit_ts, c.price AS exit_price,
        c.fee_per_share AS exit_fee_per_share,
        o.fill_id AS entry_fill_id, o.ts AS entry_ts, o.price AS entry_price,
        o.fee_per_share AS entry_fee_per_share,
        least(o.hi, c.hi) - greatest(o.lo, c.lo) AS qty
    FROM close_ranges c
    JOIN open_ranges o
      ON o.account_id = c.account_id AND o.symbol = c.symbol AND o.direction = c.direction
     AND o.lo < c.hi - {_EPS} AND c.lo < o.hi - {_EPS}
), trades AS (
    SELECT
        account_id, symbol, direction, exit_fill_id,
        min(entry_ts) AS entry_ts,
        any_value(exit_ts) AS exit_ts,
        sum(qty) AS quantity,
        sum(qty * entry_price) / sum(qty) AS entry_price,
        any_value(exit_price) AS exit_price,
        -- lot by lot: a lot closed at its own price adds exactly 0 (quantity times the
        -- difference of the averaged price leaves float noise, a breakeven "loss")
        sum(qty * (exit_price - entry_price)) AS price_move,
        sum(qty * entry_fee_per_share) + sum(qty) * any_value(exit_fee_per_share)
            AS commission,
        count(*) AS n_entry_fills,
        min(entry_fill_id) AS first_entry_fill_id
    FROM matched
    GROUP BY account_id, symbol, direction, exit_fill_id
)
SELECT
    account_id, symbol, direction, quantity,
    entry_ts, exit_ts, entry_price, exit_price,
    CASE WHEN direction = 'long' THEN 1 ELSE -1 END * price_move AS gross_pnl,
    commission,
    CASE WHEN direction = 'long' THEN 1 ELSE -1 END * price_move - commission AS pnl,
    (CASE WHEN direction = 'long' THEN 1 ELSE -1 END * price_move - commission)
        / (entry_price * quantity) AS return_pct,
    date_diff('second', entry_ts, exit_ts) AS holding_seconds,
    first_entry_fill_id, exit_fill_id, n_entry_fills
FROM trades
"""

OPEN_ORDERS = """
CREATE OR REPLACE VIEW open_orders AS
SELECT * FROM orders WHERE status IN ('new', 'accepted', 'partially_filled')
"""

LATEST_POSITIONS = """
CREATE OR REPLACE VIEW latest_positions AS
-- the latest snapshot time comes from equity too: an account that went flat writes an equity
-- row but perhaps no position rows, and must then show no positions
WITH latest AS (
    SELECT account_id, max(ts) AS ts
    FROM (SELECT account_id, ts FROM equity UNION ALL SELECT account_id, ts FROM positions)
    GROUP BY account_id
)
SELECT p.* FROM positions p JOIN latest USING (account_id, ts)
WHERE abs(p.quantity) > 1e-9
"""
