"""The `trading-interval` flow: one interval of one paper account, from one committed state
to the next.

    fetch-quotes -> run-strategy -> risk-check -> simulate-fills -> persist-to-duckdb -> notify

Tasks get the interval's run object unexamined (`quote`): Prefect does not need to walk the
broker to track dependencies, and nothing is cached because every step has side effects or
depends on the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from flows.scheduling import scheduled_start
from paper_broker.market_data.factory import make_provider
from papertrade import interval
from papertrade.calendar import MarketCalendar
from papertrade.settings import load_settings
from tasks.fetch_quotes import fetch_quotes
from tasks.notify import notify, send_alerts
from tasks.persist import persist
from tasks.risk_check import risk_check
from tasks.run_strategy import run_strategy
from tasks.simulate_fills import simulate_fills
from warehouse.run_lock import AccountBusy


@flow(name="trading-interval", log_prints=False)
def trading_interval(
    as_of: datetime | None = None,
    force: bool = False,
    config: str | None = None,
    db: str | None = None,
) -> dict[str, Any]:
    """Trade one interval. `as_of` defaults to the slot of a run the deployment's schedule
    created (see `scheduled_start`), else to now. Outside an exchange session, or when a
    scheduled run starts an interval or more after its slot (a missed run Prefect catches
    up on), the run completes at once unless `force` is set."""
    logger = get_run_logger()
    settings = load_settings(Path(config) if config else None, Path(db) if db else None)
    calendar = MarketCalendar.for_market(settings.market_data)
    scheduled = None if as_of else scheduled_start()
    if scheduled is not None and not force:
        late = interval.late_summary(settings, scheduled, datetime.now(UTC), calendar)
        if late is not None:
            logger.warning("interval %s started %.0f s late: skipped, the next run catches up",
                           late["as_of"], late["late_seconds"])  # fmt: skip
            return late
    when = interval.resolve_as_of(as_of, scheduled, calendar)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    try:
        # the warehouse file is held only by the load and by persist, not through the
        # provider's calls (see `interval.run_interval`); a busy file at persist is retried
        with interval.account_lock(settings), interval.nothing_left_on_failure(settings):
            run = interval.open_run(settings, when, provider, force=force, calendar=calendar)
            if not isinstance(run, dict):
                if run.gap:
                    since = run.last_committed
                    logger.warning("intervals missed since %s: %d", since, len(run.gap))
                fetch_quotes(quote(run), quote(provider))
                run_strategy(quote(run))
                risk_check(quote(run))
                simulate_fills(quote(run))
                summary = persist(quote(run))
    except AccountBusy as exc:
        return interval.busy_summary(settings, when, exc)
    finally:
        provider.close()  # a served process runs many flows: release the HTTP client now
    if isinstance(run, dict):
        logger.info("interval %s: %s", when.isoformat(), run["status"])
        if run["status"] == interval.IntervalStatus.ALREADY_COMMITTED:
            # what a crash after the first run's commit left unsent goes out on the retry
            run = interval.delivered(run, send_alerts(quote(settings)))
        return run
    summary = interval.delivered(summary, notify(quote(run), summary))
    logger.info(
        "interval %s %s: %d orders, %d fills, %d rejections, equity %.2f",
        when.isoformat(), summary["status"], summary.get("n_orders", 0),
        summary.get("n_fills", 0), summary.get("n_rejections", 0), summary.get("equity", 0.0),
    )  # fmt: skip
    return summary
