"""Test-wide environment: an isolated Prefect home and no telemetry, set before any test
module imports Prefect."""

from __future__ import annotations

import os
from pathlib import Path

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
