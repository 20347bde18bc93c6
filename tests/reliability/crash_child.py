"""A child process that runs one interval through `papertrade.interval.run_interval` and kills
itself with SIGKILL at a named point, the way a machine dies: no `finally`, no atexit, no
flush. The point is reached by wrapping the step the engine calls next, so the crash lands
between two real steps (or, for `during_commit`, inside the commit's open transaction).

    python -m tests.reliability.crash_child CONFIG AS_OF POINT [STAGE]

Exits 0 only if the point was never reached (the parent treats that as a failure).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

CRASH_POINTS = (
    "after_fetch",
    "after_strategy",
    "after_risk",
    "after_fills",
    "during_commit",
    "after_commit",
)
# the step whose return marks each point
_AFTER = {
    "after_fetch": "fetch_quotes",
    "after_strategy": "run_strategy",
    "after_risk": "risk_check",
    "after_fills": "simulate_fills",
}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, stage: str = "fills") -> None:
    """Wrap the engine's step functions so the run dies at `point`."""
    from papertrade import interval

    if point in _AFTER:
        name = _AFTER[point]
        real = getattr(interval, name)

        def step_then_die(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            die()

        setattr(interval, name, step_then_die)
    elif point == "during_commit":
        real_persist = interval.persist

        def persist_dying(run: Any, on_stage: Any = None) -> Any:
            def stage_hook(name: str) -> None:
                if name == stage:
                    die()

            return real_persist(run, on_stage=stage_hook)

        interval.persist = persist_dying  # type: ignore[assignment]
    elif point == "after_commit":

        def notify_dying(*args: Any, **kwargs: Any) -> Any:
            die()

        interval.notify = notify_dying  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown crash point {point!r}; one of {', '.join(CRASH_POINTS)}")


def main(argv: list[str]) -> int:
    from paper_broker.market_data.factory import make_provider
    from papertrade import interval
    from papertrade.settings import load_settings

    config, as_of, point = Path(argv[0]), datetime.fromisoformat(argv[1]), argv[2]
    stage = argv[3] if len(argv) > 3 else "fills"
    settings = load_settings(config)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    arm(point, stage)
    interval.run_interval(settings, as_of, provider)
    print("crash point not reached", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
