"""Errors a bad strategy choice raises before anything trades.

StrategyError (ValueError)
 ├── UnknownStrategy      the name is neither a built-in, an entry point, nor `module:Class`
 └── StrategyParamError   a parameter is unknown, of the wrong type, or out of range

Both are bad input a user can fix; the shell maps them to exit code 2. The message is one
line and names the strategy and, for parameters, the parameter.
"""

from __future__ import annotations


class StrategyError(ValueError):
    """Base of the strategy errors; a `ValueError` so callers can treat it as bad input."""


class UnknownStrategy(StrategyError):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"unknown strategy {name!r}: {why}")
        self.name = name


class StrategyParamError(StrategyError):
    def __init__(self, strategy: str, param: str, why: str) -> None:
        super().__init__(f"strategy {strategy} parameter {param}: {why}")
        self.strategy = strategy
        self.param = param
