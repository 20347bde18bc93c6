"""Pre-trade risk rules (RiskGuard) and the kill switch; pure, no I/O.

- `paper_broker.risk.config.RiskConfig`: the limits;
- `paper_broker.risk.guard.RiskGuard`: `check` (intents -> RiskDecision), `check_arrays`
  (the same rules on arrays aligned to a symbol universe -> ArrayVerdict, for hot loops) and
  `evaluate_portfolio` (equity -> GuardOutcome), plus `flatten_intents`;
- `paper_broker.risk.batch`: IntentArrays, PortfolioArrays and ArrayVerdict;
- `paper_broker.risk.kill_switch`: the TradingState transition table;
- `paper_broker.risk.events.RiskEvent`: breaches and state changes for the warehouse and alerts.
"""

from paper_broker.risk.batch import ArrayVerdict, IntentArrays, PortfolioArrays
from paper_broker.risk.config import RiskConfig
from paper_broker.risk.events import RiskEvent
from paper_broker.risk.guard import GuardOutcome, RiskDecision, RiskGuard, flatten_intents

__all__ = [
    "ArrayVerdict",
    "GuardOutcome",
    "IntentArrays",
    "PortfolioArrays",
    "RiskConfig",
    "RiskDecision",
    "RiskEvent",
    "RiskGuard",
    "flatten_intents",
]
