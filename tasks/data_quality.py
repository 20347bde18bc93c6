"""data-quality: the Great Expectations suites over the session's warehouse rows."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from papertrade import end_of_day
from papertrade.calendar import MarketCalendar, Session
from papertrade.settings import Settings


@task(name="data-quality", cache_policy=NO_CACHE)
def data_quality(settings: Settings, session: Session, calendar: MarketCalendar) -> list[Any]:
    return end_of_day.run_data_quality(settings, session, calendar)
