"""The exchange calendar: which instants are inside a trading session, and the interval grid.

An interval is named by its start, `as_of`; the session's intervals run from the open up to,
not including, the close, so a regular NYSE session at one minute has 390 intervals
(09:30 ... 15:59 America/New_York) and an early close at 13:00 has 210. Holidays and early
closes come from `exchange_calendars` (the calendar zipline uses).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import pandas as pd

from papertrade.errors import UserError


@dataclass(frozen=True, slots=True)
class Session:
    date: date
    open: datetime  # UTC
    close: datetime  # UTC

    @property
    def is_early_close(self) -> bool:
        return _regular_close_minutes(self) < 390


def _regular_close_minutes(session: Session) -> float:
    return (session.close - session.open).total_seconds() / 60


@cache
def _exchange_calendar(name: str, start_year: int, end_year: int):  # type: ignore[no-untyped-def]
    import exchange_calendars as xcals

    # exchange_calendars reads tz-aware Series.values, which pandas 3 deprecates loudly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return xcals.get_calendar(name, start=f"{start_year}-01-01", end=f"{end_year}-12-31")
        except xcals.errors.InvalidCalendarName:
            raise UserError(f"unknown exchange calendar: {name}") from None


class MarketCalendar:
    """Sessions of one exchange on a fixed interval grid (seconds)."""

    def __init__(self, name: str = "XNYS", interval_seconds: int = 60) -> None:
        self.name = name
        self.interval = timedelta(seconds=interval_seconds)

    @classmethod
    def for_market(cls, market_data: Any) -> MarketCalendar:
        """The calendar and interval of a `[market_data]` section."""
        return cls(market_data.calendar, market_data.interval_seconds)

    def check(self) -> None:
        """Refuse an exchange `exchange_calendars` does not know, without building it."""
        import exchange_calendars as xcals

        if self.name not in xcals.get_calendar_names(include_aliases=True):
            raise UserError(f"unknown exchange calendar: {self.name}")

    def _cal(self, year: int):  # type: ignore[no-untyped-def]
        # Cached per decade so a calendar is built once per process, not per call.
        start = year - year % 10
        return _exchange_calendar(self.name, start - 1, start + 11)

    def session(self, day: date) -> Session | None:
        """The session on `day`, or None on a weekend or holiday."""
        cal = self._cal(day.year)
        label = pd.Timestamp(day)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not cal.is_session(label):
                return None
            open_, close = cal.session_open(label), cal.session_close(label)
        return Session(
            day, open_.to_pydatetime().astimezone(UTC), close.to_pydatetime().astimezone(UTC)
        )

    def closes_between(self, first: date, last: date) -> pd.Series:
        """The close (UTC) of every session from `first` to `last` inclusive, indexed by
        session date (midnights): a slice of the exchange's schedule per decade, where
        asking `session` day by day costs most of a millisecond a day."""
        parts = []
        for decade in range(first.year - first.year % 10, last.year + 1, 10):
            lo = max(pd.Timestamp(first), pd.Timestamp(decade, 1, 1))
            hi = min(pd.Timestamp(last), pd.Timestamp(decade + 9, 12, 31))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parts.append(self._cal(decade).schedule.loc[lo:hi, "close"])
        return pd.concat(parts) if parts else pd.Series(dtype="datetime64[ns, UTC]")

    def session_at(self, ts: datetime) -> Session | None:
        """The session that `ts` falls in (open <= ts < close), else None."""
        ts = ensure_utc(ts)
        session = self.session(new_york_date(ts))
        if session is None or not (session.open <= ts < session.close):
            return None
        return session

    def floor(self, ts: datetime) -> datetime:
        """Floor to the interval grid (anchored at midnight UTC, which the open lies on)."""
        ts = ensure_utc(ts)
        step = int(self.interval.total_seconds())
        seconds = int(ts.timestamp()) // step * step
        return datetime.fromtimestamp(seconds, tz=UTC)

    def intervals(self, session: Session) -> list[datetime]:
        """Every interval start of the session, open inclusive, close exclusive."""
        out = []
        ts = session.open
        while ts < session.close:
            out.append(ts)
            ts += self.interval
        return out

    def previous_interval(self, as_of: datetime) -> datetime | None:
        """The interval before `as_of` in trading time (the previous session's last one when
        `as_of` is its session's first), or None when there is none within two weeks."""
        session = self.session_at(as_of)
        if session is not None and as_of - self.interval >= session.open:
            return as_of - self.interval
        day = new_york_date(as_of)
        for back in range(1, 15):
            earlier = self.session(day - timedelta(days=back))
            if earlier is not None:
                return self.intervals(earlier)[-1]
        return None

    def intervals_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Interval starts strictly after `start` and strictly before `end`: the ones a run
        at `end` missed since the interval committed at `start`."""
        start, end = ensure_utc(start), ensure_utc(end)
        missed: list[datetime] = []
        day, last_day = new_york_date(start), new_york_date(end)
        while day <= last_day:
            session = self.session(day)
            if session is not None:
                missed.extend(t for t in self.intervals(session) if start < t < end)
            day += timedelta(days=1)
        return missed


def new_york_date(ts: datetime) -> date:
    """The exchange's calendar day of an instant (sessions are named by it)."""
    return pd.Timestamp(ensure_utc(ts)).tz_convert("America/New_York").date()


def ensure_utc(ts: datetime) -> datetime:
    """Naive datetimes are refused: an ambiguous time in a ledger is a bug."""
    if ts.tzinfo is None:
        raise UserError(f"timestamp without a time zone: {ts.isoformat()}")
    return ts.astimezone(UTC)


def parse_as_of(text: str) -> datetime:
    """Parse an ISO 8601 timestamp from the command line; naive means UTC."""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--as-of is not an ISO 8601 timestamp: {text!r}") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def parse_session_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--date is not a YYYY-MM-DD date: {text!r}") from None
