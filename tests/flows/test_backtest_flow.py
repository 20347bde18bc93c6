"""The `backtest` flow under the Prefect test harness: same engine, stored run, artifact."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flows.backtest import backtest_flow
from tests.unit.test_backtest_engine import CLOSES, OPENS, bars_frame


@pytest.mark.flows
def test_backtest_flow_stores_the_run_and_publishes_metrics(prefect_harness, tmp_path: Path):
    from prefect.client.orchestration import get_client

    bars = tmp_path / "bars.csv"
    bars_frame({"AAA": CLOSES}, {"AAA": OPENS}).to_csv(bars, index=False)
    db = tmp_path / "w.duckdb"

    summary = backtest_flow(
        bars=str(bars), strategy="sma_crossover", params={"fast": 2, "slow": 3},
        account_id="bt-flow", db=str(db),
    )  # fmt: skip

    assert summary["account_id"] == "bt-flow" and summary["n_fills"] == 2
    with duckdb.connect(str(db), read_only=True) as conn:
        kind = conn.execute("SELECT kind FROM accounts WHERE account_id = 'bt-flow'").fetchone()
    assert kind == ("backtest",)
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    assert any(a.key == "backtest-bt-flow" and "sharpe" in (a.data or "") for a in artifact)
