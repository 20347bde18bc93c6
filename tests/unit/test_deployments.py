"""prefect.yaml and `papertrade serve` describe the same deployments, at real entrypoints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from papertrade.deployments import DEPLOYMENTS, TIMEZONE, DeploymentSpec

ROOT = Path(__file__).resolve().parents[2]


def _yaml_deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def _flow_at(entrypoint: str):  # type: ignore[no-untyped-def]
    path, name = entrypoint.split(":")
    spec = importlib.util.spec_from_file_location(f"_ep_{name}", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: f"{s.flow_name}/{s.name}")
def test_prefect_yaml_matches_the_served_deployments(spec: DeploymentSpec) -> None:
    entries = [d for d in _yaml_deployments() if d["entrypoint"] == spec.entrypoint]

    assert len(entries) == 1
    entry = entries[0]
    assert entry["name"] == spec.name
    assert [s["cron"] for s in entry["schedules"]] == list(spec.crons)
    assert {s["timezone"] for s in entry["schedules"]} == {TIMEZONE}
    assert entry["concurrency_limit"] == {
        "limit": spec.concurrency_limit,
        "collision_strategy": spec.collision_strategy,
    }
    assert entry["work_pool"]["name"] == "papertrade"
    assert _flow_at(spec.entrypoint).name == spec.flow_name


def test_interval_schedule_covers_the_session_minutes_only() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    ny = ZoneInfo(TIMEZONE)
    start = datetime(2026, 11, 23, 0, 0, tzinfo=ny)  # a Monday
    fired = set()
    for cron in DEPLOYMENTS[0].crons:
        it = CronSim(cron, start)
        for _ in range(400):
            t = next(it)
            if t.date() != start.date():
                break
            fired.add((t.hour, t.minute))

    assert len(fired) == 390
    assert min(fired) == (9, 30) and max(fired) == (15, 59)


def test_no_pull_step_needs_the_network() -> None:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())

    steps = [*(doc.get("pull") or []), *(doc.get("push") or []), *(doc.get("build") or [])]
    assert not any("git" in str(step) for step in steps)
