"""The volume the broker fills against: the interval's, from the session volume providers
quote."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from papertrade.calendar import MarketCalendar
from papertrade.interval import IntervalRun, fill_quotes
from papertrade.settings import Settings

SESSION = MarketCalendar("XNYS", 60).session(date(2026, 11, 24))


def _run(minutes_after_open: int, volumes: list[float], before: dict[str, float],
         session: Any = SESSION) -> IntervalRun:  # fmt: skip
    assert SESSION is not None
    run = IntervalRun(
        settings=Settings(),
        as_of=SESSION.open + timedelta(minutes=minutes_after_open),
        session=session,
        is_last_of_session=False,
        broker=None,  # type: ignore[arg-type]
        strategy=None,  # type: ignore[arg-type]
        trading_state=None,  # type: ignore[arg-type]
        session_start_equity=0.0,
        peak_equity=0.0,
        history=pd.DataFrame(),
        previous_mids={},
        last_committed=None,
        previous_volumes=before,
    )
    run.quotes = pd.DataFrame({"symbol": ["A", "B", "C"][: len(volumes)], "volume": volumes})
    return run


def test_the_rise_since_the_last_interval_of_the_session() -> None:
    quotes = fill_quotes(_run(10, [1_500.0, 800.0, 55.0], {"A": 1_000.0, "B": 900.0}))

    # A traded 500 since; B's fell (unknown); C has no earlier quote: 55 over 11 intervals
    assert quotes["volume"].tolist()[0] == 500.0
    assert np.isnan(quotes["volume"].tolist()[1])
    assert quotes["volume"].tolist()[2] == pytest.approx(5.0)


def test_the_first_interval_and_a_forced_one_outside_a_session_take_the_volume_as_is() -> None:
    assert fill_quotes(_run(0, [1_200.0], {}))["volume"].tolist() == [1_200.0]
    assert fill_quotes(_run(0, [1_200.0], {}, session=None))["volume"].tolist() == [1_200.0]
