"""Where the exchange sessions of a bar panel end: the bars after which a backtest expires
DAY orders, as paper trading expires them at each session's close.

- Daily bars: no two consecutive bars fall on the same New York date (the date paper names
  sessions by, `papertrade.calendar.new_york_date`). Each bar is a whole session, and a DAY
  order decided on one must be able to fill at the next bar's open, so no bar ends a
  session here; the calendar is not even built (building it costs about half a second).
- Intraday bars: bars are stamped at their close (see `papertrade.backtest.engine`), so a
  bar belongs to the first session that closes at or after its timestamp: the bar stamped
  at the close is the session's last, and one stamped after it (past an early close in a
  file that ignores it, or after hours) belongs to the next session, as a DAY order placed
  after the close is good for the next session. A bar ends its session when the next bar
  belongs to a later one. The file's last bar ends its session when no further bar of the
  file's spacing fits before the close: the rule that makes a paper interval its session's
  last (as_of + interval >= close), so a file that stops at paper's last interval, a minute
  before the close, ends the session as paper does.

The calendar is the paper account's (`[market_data] calendar`); sessions, holidays and early
closes come from `exchange_calendars` through `MarketCalendar.closes_between`.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from papertrade.calendar import MarketCalendar

# the sessions after the last bar's date that its session may be: past any run of holidays
_LOOKAHEAD = timedelta(days=10)
_DAY_NS = 86_400 * 10**9


def session_end_bars(timestamps: pd.DatetimeIndex, calendar: MarketCalendar) -> np.ndarray:
    """Ascending int64 indices of the bars that end an exchange session (see the module
    docstring); empty for daily bars. `timestamps` is the panel's tz-aware, strictly
    increasing index. Bars outside the calendar's known sessions end nothing."""
    if not is_intraday(timestamps):
        return np.empty(0, dtype=np.int64)
    ns = timestamps.as_unit("ns").asi8
    closes = _closes(timestamps, calendar)
    session = np.searchsorted(closes, ns, side="left")  # the first close at or after a bar
    known = session < closes.size
    ends = np.flatnonzero((session[1:] > session[:-1]) & known[:-1])
    if known[-1] and ns[-1] + _spacing(ns) >= closes[session[-1]]:
        ends = np.append(ends, ns.size - 1)
    return ends.astype(np.int64)


def is_intraday(timestamps: pd.DatetimeIndex) -> bool:
    """Whether two consecutive bars fall on the same New York date (see the module
    docstring): vectorised, without the calendar."""
    if len(timestamps) < 2:
        return False
    local = timestamps.tz_convert("America/New_York").tz_localize(None).as_unit("ns").asi8
    day = local // _DAY_NS
    return bool((day[1:] == day[:-1]).any())


def _closes(timestamps: pd.DatetimeIndex, calendar: MarketCalendar) -> np.ndarray:
    """The UTC nanoseconds of every session close from the first bar's New York date to
    past the last's, ascending."""
    local = timestamps.tz_convert("America/New_York")
    first, last = local[0].date(), local[-1].date() + _LOOKAHEAD
    closes = calendar.closes_between(first, last)
    return pd.DatetimeIndex(closes).as_unit("ns").asi8


def _spacing(ns: np.ndarray) -> int:
    """The file's bar length in nanoseconds: the smallest gap between two bars (missing
    bars and nights only widen the others)."""
    return int(np.diff(ns).min())
