"""notify: deliver the outbox to Slack and publish the interval's artifacts.

Never fails the run: Slack trouble leaves alerts pending for the next interval."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from papertrade import interval
from papertrade.interval import IntervalRun
from papertrade.settings import Settings
from tasks.artifact_keys import account_key


@task(name="notify", cache_policy=NO_CACHE)
def notify(run: IntervalRun, summary: dict[str, Any]) -> dict[str, Any]:
    delivery = interval.notify(run.settings, pending=summary.get("pending_alerts"))
    _publish_artifacts(run, summary)
    return delivery


@task(name="send-alerts", cache_policy=NO_CACHE)
def send_alerts(settings: Settings) -> dict[str, Any]:
    """The outbox alone (end of day): Slack trouble leaves the rows pending."""
    return interval.notify(settings)


def _publish_artifacts(run: IntervalRun, summary: dict[str, Any]) -> None:
    """The Prefect UI as the monitoring dashboard: what traded, what is held, the account."""
    key = account_key(run.account_id)
    account = run.broker.account()
    create_markdown_artifact(
        key=f"{key}-account",
        markdown=(
            f"### {run.account_id} at {run.as_of:%Y-%m-%d %H:%M} UTC\n\n"
            "| cash | equity | gross exposure | net exposure | day P&L | state |\n"
            "|---:|---:|---:|---:|---:|---|\n"
            f"| {account.cash:,.2f} | {account.equity:,.2f} | {account.gross_exposure:,.2f} "
            f"| {account.net_exposure:,.2f} | {summary.get('day_pnl', 0.0):,.2f} "
            f"| {summary.get('trading_state', '')} |\n"
        ),
        description="Account line after the interval",
    )
    create_table_artifact(
        key=f"{key}-interval-orders",
        table=[_order_row(o) for o in run.orders] or [{"orders": "none this interval"}],
        description=f"Orders of the interval {run.as_of.isoformat()}",
    )
    create_table_artifact(
        key=f"{key}-interval-fills",
        table=[_fill_row(f) for f in run.fills] or [{"fills": "none this interval"}],
        description=f"Fills of the interval {run.as_of.isoformat()}",
    )
    positions = interval.positions_frame(run.broker)
    create_table_artifact(
        key=f"{key}-positions",
        table=positions.round(4).to_dict(orient="records") or [{"positions": "flat"}],
        description="Positions after the interval",
    )


def _order_row(order: Any) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.order_type),
        "quantity": order.quantity,
        "status": str(order.status),
        "filled": order.filled_quantity,
        "avg_price": order.avg_fill_price,
        "reject_reason": order.reject_reason,
    }


def _fill_row(fill: Any) -> dict[str, Any]:
    return {
        "fill_id": fill.fill_id,
        "symbol": fill.symbol,
        "side": str(fill.side),
        "quantity": fill.quantity,
        "price": fill.price,
        "commission": round(fill.commission, 4),
    }
