"""The `end-of-day` flow: how the account did, and whether its data can be trusted.

    performance-metrics -> data-quality -> report -> send-alerts

Any failed expectation marks the session `degraded` in `daily_performance` and queues a
Slack alert naming it; the summary with the equity chart follows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from flows.scheduling import scheduled_start
from papertrade import end_of_day as eod
from papertrade.settings import load_settings
from tasks.data_quality import data_quality
from tasks.notify import send_alerts
from tasks.performance import performance_metrics
from tasks.report import report


@flow(name="end-of-day", log_prints=False)
def end_of_day(
    session_date: date | None = None, config: str | None = None, db: str | None = None
) -> dict[str, Any]:
    """Report on `session_date`. Without it a scheduled run reports its scheduled day's
    session (nothing on a holiday), and any other run the latest session that has closed."""
    logger = get_run_logger()
    settings = load_settings(Path(config) if config else None, Path(db) if db else None)
    now = datetime.now(UTC)
    scheduled = scheduled_start() if session_date is None else None
    opened = eod.open_day(settings, session_date, now, scheduled)
    if isinstance(opened, dict):
        logger.info("end of day: %s", opened["detail"])
        return opened
    calendar, session = opened
    metrics, curve, positions = performance_metrics(quote(settings), quote(session))
    results = data_quality(quote(settings), quote(session), quote(calendar))
    day = eod.DayReport(settings.account.id, session, metrics, curve, positions, results)
    report(quote(settings), quote(day), now)
    summary = day.summary()
    summary["notify"] = send_alerts(quote(settings))
    logger.info("end of day %s: %s", session.date, summary["status"])
    return summary
