"""run-strategy: bring resting orders up to date, then the strategy's order intents."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paper_broker.records import OrderIntent
from papertrade import interval
from papertrade.interval import IntervalRun


@task(name="run-strategy", cache_policy=NO_CACHE)
def run_strategy(run: IntervalRun) -> list[OrderIntent]:
    return interval.run_strategy(run)
