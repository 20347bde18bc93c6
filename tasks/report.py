"""report: the Markdown report (a Prefect artifact), the equity chart, and the day's rows
and alerts stored in one transaction."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from papertrade import end_of_day
from papertrade.end_of_day import DayReport
from papertrade.settings import Settings
from tasks.artifact_keys import account_key


@task(name="report", cache_policy=NO_CACHE)
def report(settings: Settings, day: DayReport, now: datetime) -> DayReport:
    day.trading_state = end_of_day.trading_state_at_close(settings, day.session)
    end_of_day.build_report(day, settings.warehouse.reports_dir)
    end_of_day.store(settings, day, now)
    key = account_key(day.account_id)
    create_markdown_artifact(
        key=f"{key}-end-of-day",
        markdown=day.markdown,
        description=f"End of day {day.session.date} ({day.status})",
    )
    return day
