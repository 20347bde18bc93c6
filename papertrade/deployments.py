"""The two deployments and their schedules, shared by `papertrade serve` and checked
against `prefect.yaml` by the tests, so the UI and the one-process server agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TIMEZONE = "America/New_York"


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    flow_name: str
    name: str
    entrypoint: str
    crons: tuple[str, ...]
    concurrency_limit: int
    collision_strategy: str


# 09:30-15:59 every minute on weekdays; the flow's exchange calendar skips holidays and the
# minutes after an early close.
TRADING_INTERVAL = DeploymentSpec(
    flow_name="trading-interval",
    name="paper",
    entrypoint="flows/trading_interval.py:trading_interval",
    crons=("30-59 9 * * 1-5", "* 10-15 * * 1-5"),
    concurrency_limit=1,
    collision_strategy="CANCEL_NEW",
)
END_OF_DAY = DeploymentSpec(
    flow_name="end-of-day",
    name="paper",
    entrypoint="flows/end_of_day.py:end_of_day",
    crons=("15 16 * * 1-5",),
    concurrency_limit=1,
    collision_strategy="ENQUEUE",
)
DEPLOYMENTS = (TRADING_INTERVAL, END_OF_DAY)


def runner_deployments(parameters: dict[str, Any] | None = None) -> list[Any]:
    """Both deployments as Prefect runner deployments for `prefect.serve`."""
    from prefect.client.schemas.objects import (
        ConcurrencyLimitConfig,
        ConcurrencyLimitStrategy,
    )
    from prefect.schedules import Cron

    from flows.end_of_day import end_of_day
    from flows.trading_interval import trading_interval

    flows = {"trading-interval": trading_interval, "end-of-day": end_of_day}
    out = []
    for spec in DEPLOYMENTS:
        out.append(
            flows[spec.flow_name].to_deployment(
                name=spec.name,
                schedules=[Cron(c, timezone=TIMEZONE) for c in spec.crons],
                concurrency_limit=ConcurrencyLimitConfig(
                    limit=spec.concurrency_limit,
                    collision_strategy=ConcurrencyLimitStrategy(spec.collision_strategy),
                ),
                parameters=parameters or {},
            )
        )
    return out


def worker_deployments() -> list[tuple[str, str]]:
    """(name, work pool) of those of the two deployments the Prefect server already has on
    a work pool. `prefect.serve` would take them over but leave the pool set, and their
    runs then crash looking for code the runner never stored."""
    return [(name, d.work_pool_name) for name, d in _registered() if d.work_pool_name]


def served_elsewhere(parameters: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, parameters) of those of the two deployments the Prefect server has active
    (not paused, not on a work pool) with other `parameters`: another `papertrade serve`
    (another account's config or warehouse) serves them. The names are fixed, so a second
    serve would take them over: every scheduled run would then trade the second config
    only, and the first account's runs would stop without a word. A serve that stopped
    with Ctrl-C paused its deployments and is taken over as before."""
    found = []
    for name, deployment in _registered():
        theirs = dict(deployment.parameters or {})
        if not deployment.work_pool_name and not deployment.paused and theirs != parameters:
            found.append((name, theirs))
    return found


def _registered() -> list[tuple[str, Any]]:
    """(name, deployment) of those of the two deployments the Prefect server has."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    found = []
    with get_client(sync_client=True) as client:
        for spec in DEPLOYMENTS:
            name = f"{spec.flow_name}/{spec.name}"
            try:
                found.append((name, client.read_deployment_by_name(name)))
            except ObjectNotFound:
                continue
    return found
