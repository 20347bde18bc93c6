"""simulate-fills: approved intents become orders and fill against this interval's quotes."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paper_broker.records import Fill
from papertrade import interval
from papertrade.interval import IntervalRun


@task(name="simulate-fills", cache_policy=NO_CACHE)
def simulate_fills(run: IntervalRun) -> list[Fill]:
    return interval.simulate_fills(run)
