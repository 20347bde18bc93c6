"""Resolving strategies by name: built-ins, entry points, `module:Class`."""

from __future__ import annotations

from importlib import metadata
from typing import ClassVar

import numpy as np
import pytest
from pydantic import Field

from paper_broker.enums import Side
from strategies import registry
from strategies.base import BaseStrategy, Prepared, StrategyParams, build_intents
from strategies.errors import StrategyParamError, UnknownStrategy
from strategies.registry import load_strategy

HERE = __name__


class AlwaysBuyParams(StrategyParams):
    qty: float = Field(1.0, gt=0)


class AlwaysBuy(BaseStrategy):
    """A user strategy living outside the project's packages: buys `qty` of everything."""

    name: ClassVar[str] = "always_buy"
    Params = AlwaysBuyParams

    def _prepare(self, values, symbols, timestamps):
        return Prepared(symbols, {}, np.ones(values.shape[0], dtype=bool), timestamps)

    def decide(self, t, prepared, positions, equity, prices, tradable):
        idx = np.flatnonzero(tradable)
        return build_intents(prepared.symbols, idx, np.full(idx.size, self.params.qty), self.name)


class NotAStrategy:
    def __init__(self, params):
        self.params = params


def _entry_points(*eps: metadata.EntryPoint):
    def fake(**kwargs):
        assert kwargs == {"group": registry.ENTRY_POINT_GROUP}
        return metadata.EntryPoints(eps)

    return fake


@pytest.mark.parametrize("name", ["sma_crossover", "mean_reversion", "momentum", "buy_and_hold"])
def test_builtins_resolve_with_default_params(name):
    strategy = load_strategy(name, {})

    assert strategy.name == name


def test_module_class_name_builds_a_user_strategy_with_params():
    strategy = load_strategy(f"{HERE}:AlwaysBuy", {"qty": 3})

    intents = strategy.decide(
        0, strategy.prepare(np.ones((1, 2))), np.zeros(2), 1.0, np.ones(2), np.ones(2, bool)
    )

    assert [(i.symbol, i.side, i.quantity, i.strategy) for i in intents] == [
        ("0", Side.BUY, 3, "always_buy"),
        ("1", Side.BUY, 3, "always_buy"),
    ]


def test_entry_point_resolves_before_module_class(monkeypatch):
    ep = metadata.EntryPoint("house_buy", f"{HERE}:AlwaysBuy", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.metadata, "entry_points", _entry_points(ep))

    strategy = load_strategy("house_buy", {"qty": 2})

    assert isinstance(strategy, AlwaysBuy) and strategy.params.qty == 2


def test_broken_entry_point_is_an_unknown_strategy(monkeypatch):
    ep = metadata.EntryPoint("broken", f"{HERE}:Missing", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.metadata, "entry_points", _entry_points(ep))

    with pytest.raises(UnknownStrategy, match="broken"):
        load_strategy("broken", {})


def test_user_strategy_params_are_validated():
    with pytest.raises(StrategyParamError, match="qty"):
        load_strategy(f"{HERE}:AlwaysBuy", {"qty": -1})


@pytest.mark.parametrize(
    "name",
    [
        "no_such_strategy", "no_such_module_xyz:Thing", f"{HERE}:Missing", f"{HERE}:NotAStrategy",
        ":Thing", ".relative:Thing", f"{HERE}:", "a..b:Thing",
    ],
)  # fmt: skip
def test_unknown_names_raise_one_line_value_errors(name):
    with pytest.raises(UnknownStrategy) as err:
        load_strategy(name, {})

    assert isinstance(err.value, ValueError)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_unknown_builtin_param_is_named():
    with pytest.raises(StrategyParamError, match="lookbak"):
        load_strategy("momentum", {"lookbak": 3})
