"""Quality results as values, and their rows in the `dq_results` table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

MAX_SAMPLE = 5

DQ_RESULTS_COLUMNS = [
    "account_id",
    "session_date",
    "run_at",
    "suite",
    "expectation",
    "success",
    "observed_value",
    "unexpected_count",
    "sample_json",
]


@dataclass(frozen=True, slots=True)
class DQResult:
    """The outcome of one expectation: `unexpected_count` offending rows (0 for a success),
    `observed_value` a human-readable summary, `sample` up to five offending rows as
    JSON-ready dicts (keys of the row plus the checked values)."""

    suite: str
    expectation: str
    success: bool
    observed_value: str
    unexpected_count: int
    sample: list[dict[str, Any]] = field(default_factory=list)


def dq_results_frame(
    results: list[DQResult], account_id: str, session_date: date, run_at: datetime
) -> pd.DataFrame:
    """Rows for `dq_results`, one per expectation, in the table's column order."""
    return pd.DataFrame(
        {
            "account_id": [account_id] * len(results),
            "session_date": [session_date] * len(results),
            "run_at": pd.Series([run_at] * len(results), dtype="datetime64[us, UTC]"),
            "suite": [r.suite for r in results],
            "expectation": [r.expectation for r in results],
            "success": pd.Series([r.success for r in results], dtype="bool"),
            "observed_value": [r.observed_value for r in results],
            "unexpected_count": pd.Series([r.unexpected_count for r in results], dtype="int64"),
            "sample_json": [json.dumps(r.sample, sort_keys=True) for r in results],
        },
        columns=DQ_RESULTS_COLUMNS,
    )


def failures(results: list[DQResult]) -> list[DQResult]:
    return [r for r in results if not r.success]


def json_ready(value: Any) -> Any:
    """Plain Python for numpy/pandas scalars; timestamps as ISO 8601; NaN/NaT as None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
