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
from papertrade.deployments import worker_deployments

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
