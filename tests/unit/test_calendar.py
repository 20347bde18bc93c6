from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from papertrade.calendar import MarketCalendar, parse_as_of
from papertrade.errors import UserError

CAL = MarketCalendar("XNYS", 60)


def test_regular_session_has_390_one_minute_intervals() -> None:
    session = CAL.session(date(2026, 11, 25))
    assert session is not None
    intervals = CAL.intervals(session)
    assert len(intervals) == 390
    assert intervals[0] == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    assert intervals[-1] == datetime(2026, 11, 25, 20, 59, tzinfo=UTC)


def test_closes_between_are_the_sessions_closes_across_a_decade() -> None:
    first, last = date(2019, 12, 30), date(2020, 1, 3)

    closes = CAL.closes_between(first, last)

    # 2020-01-01 is a holiday; the range spans the calendars of two decades
    sessions = [CAL.session(date(y, m, d)) for y, m, d in
                [(2019, 12, 30), (2019, 12, 31), (2020, 1, 2), (2020, 1, 3)]]  # fmt: skip
    assert [t.date() for t in closes.index] == [s.date for s in sessions if s]
    assert [t.to_pydatetime() for t in closes] == [s.close for s in sessions if s]


def test_thanksgiving_is_a_holiday_and_the_day_after_closes_early() -> None:
    assert CAL.session(date(2026, 11, 26)) is None
    friday = CAL.session(date(2026, 11, 27))
    assert friday is not None and friday.is_early_close
    assert friday.close == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert len(CAL.intervals(friday)) == 210
    assert CAL.session_at(datetime(2026, 11, 27, 18, 0, tzinfo=UTC)) is None
    assert CAL.session_at(datetime(2026, 11, 27, 17, 59, tzinfo=UTC)) == friday


def test_floor_and_missed_intervals_across_a_holiday() -> None:
    assert CAL.floor(datetime(2026, 11, 25, 15, 7, 42, tzinfo=UTC)) == datetime(
        2026, 11, 25, 15, 7, tzinfo=UTC
    )
    missed = CAL.intervals_between(
        datetime(2026, 11, 25, 20, 58, tzinfo=UTC), datetime(2026, 11, 27, 14, 33, tzinfo=UTC)
    )
    assert [t.minute for t in missed] == [59, 30, 31, 32]
    assert CAL.previous_interval(datetime(2026, 11, 27, 14, 30, tzinfo=UTC)) == datetime(
        2026, 11, 25, 20, 59, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T10:00", ""])
def test_bad_as_of_is_a_user_error(text: str) -> None:
    with pytest.raises(UserError, match="--as-of"):
        parse_as_of(text)


def test_as_of_without_zone_is_utc() -> None:
    assert parse_as_of("2026-11-25T15:00") == datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
