"""End-of-day data quality: GX suites over one session of the warehouse.

Importing this package does not import Great Expectations; `run_quality_checks` does.
"""

from papertrade.dq.frames import SessionFrames, load_session_frames
from papertrade.dq.results import DQResult, dq_results_frame, failures
from papertrade.dq.suites import run_quality_checks

__all__ = [
    "DQResult",
    "SessionFrames",
    "dq_results_frame",
    "failures",
    "load_session_frames",
    "run_quality_checks",
]
