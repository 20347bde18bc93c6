"""`papertrade serve` refuses deployments a worker already runs on the same server: served
over them, their runs would crash looking for code the runner never stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from typer.testing import CliRunner

from flows.end_of_day import end_of_day
from papertrade.cli import app
from papertrade.deployments import served_elsewhere, worker_deployments

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def test_serve_refuses_deployments_that_run_on_a_work_pool(tmp_path: Path) -> None:
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="papertrade-test", type="process"))
    deployment = end_of_day.to_deployment(name="paper", work_pool_name="papertrade-test")
    deployment_id = deployment.apply()
    try:
        assert worker_deployments() == [("end-of-day/paper", "papertrade-test")]

        result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "pt.duckdb")])

        assert result.exit_code == 2
        assert result.output.startswith(
            "error: end-of-day/paper (pool papertrade-test) already run on a work pool"
        )
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
    assert worker_deployments() == []


def test_serve_refuses_deployments_another_serve_runs_with_another_config(
    tmp_path: Path,
) -> None:
    # a second account's serve took the fixed names over: every run then traded its config
    # and the first account stopped trading without a word
    from flows.trading_interval import trading_interval

    other = {"config": str(tmp_path / "alpha.toml"), "db": str(tmp_path / "pt.duckdb")}
    deployment_id = trading_interval.to_deployment(name="paper", parameters=other).apply()
    try:
        result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "pt.duckdb")])

        assert result.exit_code == 2
        assert result.output.startswith(
            f"error: trading-interval/paper is served with config {other['config']}, db "
        )
        with get_client(sync_client=True) as client:
            client.pause_deployment(deployment_id)
        # a serve stopped with Ctrl-C paused its deployments: those are taken over
        assert served_elsewhere({"db": str(tmp_path / "pt.duckdb")}) == []
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
