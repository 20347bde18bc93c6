"""fetch-quotes: the universe's quotes at `as_of`, validated. Retried on provider trouble;
safe because nothing is written before persist-to-duckdb."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from paper_broker.market_data.protocol import MarketDataProvider
from papertrade import interval
from papertrade.interval import IntervalRun


@task(name="fetch-quotes", retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def fetch_quotes(run: IntervalRun, provider: MarketDataProvider) -> pd.DataFrame:
    return interval.fetch_quotes(run, provider)
