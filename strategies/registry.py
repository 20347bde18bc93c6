"""Find a strategy by name: built-ins, then the `papertrade.strategies` entry points, then
`module:Class`.

A user strategy needs no change to this project: publish it as an entry point in the
`papertrade.strategies` group of your own package, or name it `package.module:Class` in the
config. The class is constructed as `Class(params)` with the config's params dict and must
implement the `Strategy` protocol (subclassing `strategies.base.BaseStrategy` does).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from paper_broker.risk.batch import KILL_SWITCH_STRATEGY
from strategies.base import Strategy
from strategies.buy_and_hold import BuyAndHold
from strategies.errors import StrategyError, UnknownStrategy
from strategies.mean_reversion import MeanReversion
from strategies.momentum import Momentum
from strategies.sma_crossover import SmaCrossover

ENTRY_POINT_GROUP = "papertrade.strategies"

BUILTINS: Mapping[str, type] = {
    cls.name: cls for cls in (SmaCrossover, MeanReversion, Momentum, BuyAndHold)
}


def load_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Resolve `name` and build the strategy with validated `params`.

    Raises `UnknownStrategy` when nothing answers to the name (or what answers is not a
    strategy) and `StrategyParamError` when a parameter is unknown or out of range."""
    params = dict(params or {})
    cls = _resolve(name)
    try:
        strategy = cls(params)
    except StrategyError:
        raise
    except (TypeError, ValueError) as exc:
        raise UnknownStrategy(name, f"cannot be built: {exc}".replace("\n", " ")) from None
    if not isinstance(strategy, Strategy):
        raise UnknownStrategy(name, "does not implement the Strategy protocol")
    if not getattr(strategy, "name", ""):
        strategy.name = name
    if strategy.name == KILL_SWITCH_STRATEGY:
        # the name of the risk check's flatten orders, which pass a halt and the limits
        raise UnknownStrategy(name, f"{KILL_SWITCH_STRATEGY!r} is the kill switch's name")
    return strategy


def _resolve(name: str) -> Any:
    if name in BUILTINS:
        return BUILTINS[name]
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load()
            except (ImportError, AttributeError) as exc:
                raise UnknownStrategy(name, f"entry point {ep.value} fails: {exc}") from None
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if not all(part.isidentifier() for part in module_name.split(".")) or not attr:
            raise UnknownStrategy(name, "expected package.module:Class")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UnknownStrategy(name, f"cannot import {module_name}: {exc}") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise UnknownStrategy(name, f"{module_name} has no {attr}") from None
    known = ", ".join(sorted(BUILTINS))
    raise UnknownStrategy(name, f"not a built-in ({known}), entry point or module:Class")
