"""Where a bar panel's exchange sessions end: the bars after which a backtest expires DAY
orders, as paper trading does at each session's close."""

from __future__ import annotations

import pandas as pd
import pytest

from papertrade.backtest.sessions import session_end_bars
from papertrade.calendar import MarketCalendar

CAL = MarketCalendar("XNYS")


def stamps(*times: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(times), tz="UTC")


def minutes(first: str, n: int) -> list[str]:
    start = pd.Timestamp(first)
    return [str(start + pd.Timedelta(minutes=k)) for k in range(n)]


def test_a_session_ends_at_its_last_bar_before_the_next_session():
    # Monday 2024-01-08's last three minutes (stamped at their close) and Tuesday's first
    ts = stamps(*minutes("2024-01-08 20:58", 3), *minutes("2024-01-09 14:31", 3))

    assert session_end_bars(ts, CAL).tolist() == [2]


def test_every_session_of_a_run_ends_over_weekends_and_holidays():
    # Wednesday 2026-11-25, then Friday 11-27 after Thanksgiving (closing at 18:00 UTC),
    # then Monday 11-30: two bars a session
    ts = stamps(
        "2026-11-25 20:00", "2026-11-25 21:00", "2026-11-27 17:00", "2026-11-27 18:00",
        "2026-11-30 15:00", "2026-11-30 16:00",
    )  # fmt: skip

    assert session_end_bars(ts, CAL).tolist() == [1, 3]


def test_an_early_close_ends_the_session_at_its_last_bar_before_the_close():
    # a file that ignores the early close of Friday 2026-11-27 (13:00 New York, 18:00 UTC):
    # its bars after 18:00 are no longer that session, and the orders of the session
    # expire at the bar stamped 18:00 as paper expires them at its close
    ts = stamps(*minutes("2026-11-27 17:58", 6), *minutes("2026-11-30 14:31", 2))

    ends = session_end_bars(ts, CAL)

    assert ts[ends].tolist() == [pd.Timestamp("2026-11-27 18:00", tz="UTC")]


@pytest.mark.parametrize(
    ("last", "ends"),
    [
        # the bar stamped at the close, and the one before it: no further bar of the
        # file's spacing fits in the session (paper's last interval starts a minute before
        # the close)
        ("2024-01-08 21:00", True),
        ("2024-01-08 20:59", True),
        # the session goes on after the file
        ("2024-01-08 20:58", False),
    ],
)
def test_the_files_last_bar_ends_its_session_when_no_bar_fits_after_it(last, ends):
    ts = stamps(*minutes(str(pd.Timestamp(last) - pd.Timedelta(minutes=4)), 5))

    assert session_end_bars(ts, CAL).tolist() == ([4] if ends else [])


@pytest.mark.parametrize("time_of_day", ["00:00", "21:00"])
def test_daily_bars_never_end_a_session_between_bars(time_of_day):
    # each daily bar is a whole session, stamped at midnight UTC (dates) or at the close
    ts = pd.date_range(f"2024-01-02 {time_of_day}", periods=30, freq="B", tz="UTC")

    assert session_end_bars(ts, CAL).tolist() == []


def test_a_single_bar_ends_nothing():
    assert session_end_bars(stamps("2024-01-08 15:00"), CAL).tolist() == []
