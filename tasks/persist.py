"""persist-to-duckdb: the whole interval in one transaction. Retried when the file is busy;
a retry after a commit that did land is a no-op that returns the stored summary."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from papertrade import interval
from papertrade.interval import IntervalRun


@task(name="persist-to-duckdb", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def persist(run: IntervalRun) -> dict[str, Any]:
    return interval.persist(run)
