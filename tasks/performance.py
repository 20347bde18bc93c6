"""performance-metrics: from inception to the session's close, on session-close equity."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from papertrade import end_of_day
from papertrade.calendar import Session
from papertrade.metrics import Metrics
from papertrade.settings import Settings


@task(name="performance-metrics", cache_policy=NO_CACHE)
def performance_metrics(
    settings: Settings, session: Session
) -> tuple[Metrics, pd.Series, pd.DataFrame]:
    return end_of_day.compute_day_metrics(settings, session)
