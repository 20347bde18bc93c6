"""What a flow run knows about its schedule."""

from __future__ import annotations

from datetime import datetime


def scheduled_start() -> datetime | None:
    """The slot of a run its deployment's schedule created, however late the run starts;
    None for any other run (the CLI's, a quick run from the UI, an API call), which names
    the time it runs. Prefect gives every run an expected start (the creation time of an
    ad hoc one), so the schedule's own runs are told apart by `auto_scheduled`."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or not context.flow_run.auto_scheduled:
        return None
    start = context.flow_run.expected_start_time
    return datetime.fromtimestamp(start.timestamp(), tz=start.tzinfo) if start else None
