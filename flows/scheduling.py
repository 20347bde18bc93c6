"""What a flow run knows about its schedule."""

from __future__ import annotations

from datetime import datetime


def scheduled_start() -> datetime | None:
    """The flow run's scheduled start time (a deployment's schedule slot, however late the
    run starts; the creation time of an ad hoc run), or None outside a flow run."""
    from prefect.runtime import flow_run

    if flow_run.id is None:
        return None
    start = flow_run.scheduled_start_time
    return datetime.fromtimestamp(start.timestamp(), tz=start.tzinfo) if start else None
