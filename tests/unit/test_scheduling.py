"""Which runs are a schedule's: only those the scheduler created name their slot."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from flows.scheduling import scheduled_start

SLOT = datetime(2026, 11, 24, 14, 31, tzinfo=UTC)


@pytest.mark.parametrize(("auto", "expected"), [(True, SLOT), (False, None)])
def test_only_a_schedules_run_names_its_slot(
    monkeypatch: pytest.MonkeyPatch, auto: bool, expected: datetime | None
) -> None:
    from prefect.context import FlowRunContext

    run = SimpleNamespace(auto_scheduled=auto, expected_start_time=SLOT)
    monkeypatch.setattr(
        FlowRunContext, "get", classmethod(lambda cls: SimpleNamespace(flow_run=run))
    )

    assert scheduled_start() == expected


def test_outside_a_flow_run_there_is_no_slot() -> None:
    assert scheduled_start() is None
