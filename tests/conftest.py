"""Test-wide environment: an isolated Prefect home and no telemetry, set before any test
module imports Prefect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
os.environ["PREFECT_HOME"] = str(_ROOT / ".prefect-test-home")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
for _var in (
    "PAPERTRADE_CONFIG",
    "PAPERTRADE_DB",
    "PREFECT_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_WEBHOOK_URL",
    "POLYGON_API_KEY",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
):
    os.environ.pop(_var, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Flow tests last. The session's Prefect harness leaves client threads running (log
    and event workers) that draw from the global `random`; hypothesis tests running after
    it see the global state move under them and fail as flaky."""
    items.sort(key=lambda item: item.get_closest_marker("flows") is not None)
