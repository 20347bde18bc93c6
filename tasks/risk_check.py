"""risk-check: portfolio guards and the kill switch, then every intent against the rules."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from paper_broker.risk.guard import RiskDecision
from papertrade import interval
from papertrade.interval import IntervalRun


@task(name="risk-check", cache_policy=NO_CACHE)
def risk_check(run: IntervalRun) -> RiskDecision:
    return interval.risk_check(run)
