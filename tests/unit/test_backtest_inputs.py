"""Bars validation, `--param`/`--grid` parsing, ranking, and walk-forward windows."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from papertrade.backtest.bars import BarsFileError, panel_from_frame
from papertrade.backtest.params import (
    ParamSyntaxError,
    buildable,
    expand_grid,
    parse_grid,
    parse_params,
)
from papertrade.backtest.ranking import rank
from papertrade.backtest.walk_forward import windows
from papertrade.errors import UserError
from strategies.errors import StrategyParamError
from tests.unit.test_backtest_engine import bars_frame


def good() -> pd.DataFrame:
    return bars_frame({"AAA": [10.0, 11.0, 12.0], "BBB": [20.0, 21.0, 22.0]})


def test_panel_is_aligned_by_timestamp_and_symbol_with_nan_for_missing_bars():
    frame = good().iloc[:-1]  # BBB has no third bar

    panel = panel_from_frame(frame)

    assert panel.symbols == ("AAA", "BBB")
    assert panel.close[:, 0].tolist() == [10.0, 11.0, 12.0]
    assert panel.close[:2, 1].tolist() == [20.0, 21.0] and np.isnan(panel.close[2, 1])
    assert str(panel.timestamps.tz) == "UTC"


def test_rows_in_any_order_give_the_same_panel_and_errors_name_the_files_rows():
    by_symbol = good().sort_values("symbol", kind="stable")
    reversed_ = good().iloc[::-1].reset_index(drop=True)
    bad = _set(reversed_, 4, "close", -5.0)  # a row of the file's second timestamp

    panels = [panel_from_frame(f) for f in (good(), by_symbol, reversed_)]
    with pytest.raises(BarsFileError, match=r"row 5 \((AAA|BBB)\): close") as err:
        panel_from_frame(bad)

    for panel in panels[1:]:
        assert panel.timestamps.equals(panels[0].timestamps)
        assert panel.symbols == panels[0].symbols
        for column in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(panel, column), getattr(panels[0], column))
    assert bad.loc[4, "symbol"] in str(err.value)


def _set(frame: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    out = frame.reset_index(drop=True).astype({column: object})
    out.loc[row, column] = value
    return out


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f.drop(columns=["volume", "low"]), "missing columns low, volume"),
        (lambda f: pd.concat([f.iloc[:2], f.iloc[1:2], f.iloc[2:]]), "duplicate bar"),
        (lambda f: _set(f, 3, "close", -5.0), r"close must be a positive number \(got -5.0\)"),
        (lambda f: _set(f, 2, "open", np.nan), "open must be a positive number"),
        (lambda f: _set(f, 1, "high", 1.0), "high 1 < low"),
        (lambda f: _set(f, 4, "timestamp", "yesterday"), "unparseable timestamp"),
        (lambda f: f.iloc[:0], "no rows"),
        (lambda f: _set(f, 3, "close", np.inf), r"row 4 \(\w+\): close must be a positive"),
        (lambda f: _set(f, 2, "high", np.inf), r"row 3 \(\w+\): high must be a positive"),
        (lambda f: _set(f, 4, "volume", np.inf), r"row 5 \(\w+\): volume must be a number"),
        (lambda f: _set(f, 4, "volume", "lots"), r"row 5 \(\w+\): volume must be a number"),
        (lambda f: _set(f, 1, "symbol", "   "), "row 2: missing symbol"),
    ],
)
def test_bad_bars_are_refused_naming_the_problem(mutate, needle):
    with pytest.raises(BarsFileError, match=needle) as err:
        panel_from_frame(mutate(good()))

    assert "\n" not in str(err.value)


def test_params_are_typed_as_written():
    assert parse_params(["fast=5", "x=0.5", "flag=true", "name=abc"]) == {
        "fast": 5, "x": 0.5, "flag": True, "name": "abc",
    }  # fmt: skip
    with pytest.raises(ParamSyntaxError):
        parse_params(["fast"])


def test_grid_expands_to_every_combination_in_order():
    grid = parse_grid(["fast=5,10", "slow=30,50"])

    combos = expand_grid(grid, {"qty": 1})

    assert combos == [
        {"qty": 1, "fast": 5, "slow": 30}, {"qty": 1, "fast": 5, "slow": 50},
        {"qty": 1, "fast": 10, "slow": 30}, {"qty": 1, "fast": 10, "slow": 50},
    ]  # fmt: skip


def test_rank_puts_best_first_and_undefined_last():
    rows = [{"metrics": {"sharpe": 0.5}}, {"metrics": {"sharpe": None}},
            {"metrics": {"sharpe": 1.5}}]  # fmt: skip

    ranked = rank(rows, "sharpe")

    assert [r["metrics"]["sharpe"] for r in ranked] == [1.5, 0.5, None]
    assert [r["rank"] for r in ranked] == [1, 2, 3]
    assert rank(rows, "volatility")[0]["rank"] == 1  # lower-is-better path does not crash


@given(n_bars=st.integers(2, 400), train=st.integers(1, 120), test=st.integers(1, 60))
def test_walk_forward_test_windows_never_overlap_training_or_each_other(n_bars, train, test):
    if train + test > n_bars:
        with pytest.raises(UserError):
            windows(n_bars, train, test)
        return

    ws = windows(n_bars, train, test)

    assert ws
    for w in ws:
        assert w.train_stop - w.train_start == train and w.test_stop - w.test_start == test
        assert w.train_stop <= w.test_start  # test after its own training, disjoint
        assert w.test_stop <= n_bars
    for a, b in itertools.pairwise(ws):
        assert b.test_start == a.test_stop  # step = test: tests tile without overlap
    assert n_bars - ws[-1].test_stop < test  # no whole test window left out


def test_a_number_for_a_timestamp_is_named_as_the_file_has_it() -> None:
    frame = good().assign(timestamp=1704153600)  # epoch seconds: not a time papertrade reads

    with pytest.raises(BarsFileError) as err:
        panel_from_frame(frame)

    assert str(err.value) == "bars: 6 unparseable timestamp(s), first at row 1 (1704153600)"


def test_missing_columns_are_named_with_the_ones_the_file_has() -> None:
    frame = pd.DataFrame(
        {"timestamp;symbol;open;high;low;close;volume": ["2024-01-02;A;1;1;1;1;1"]}
    )

    with pytest.raises(BarsFileError) as err:
        panel_from_frame(frame)

    assert str(err.value) == (
        "bars: missing columns timestamp, symbol, open, high, low, close, volume "
        "(it has 'timestamp;symbol;open;high;low;close;volume')"
    )


def test_a_name_in_both_param_and_grid_is_refused() -> None:
    with pytest.raises(ParamSyntaxError, match="fast is given by --param and by --grid"):
        expand_grid(parse_grid(["fast=3,5", "slow=20"]), parse_params(["fast=7"]))


def test_a_grid_beyond_the_sweep_limit_is_refused() -> None:
    values = ",".join(str(v) for v in range(1, 101))
    grid = parse_grid([f"fast={values}", f"qty={values}"])  # 10,000 combinations

    with pytest.raises(ParamSyntaxError, match="the grid has 10,000 combinations, more than"):
        expand_grid(grid)


def test_a_sweep_skips_the_parameter_sets_its_strategy_refuses() -> None:
    combos = expand_grid({"fast": [5, 30], "slow": [30, 50]})

    accepted, refused = buildable("sma_crossover", combos)

    assert accepted == [{"fast": 5, "slow": 30}, {"fast": 5, "slow": 50}, {"fast": 30, "slow": 50}]
    assert len(refused) == 1 and refused[0].startswith('{"fast":30,"slow":30}: ')


def test_a_grid_its_strategy_refuses_whole_is_bad_input() -> None:
    with pytest.raises(StrategyParamError, match="fsat"):
        buildable("sma_crossover", expand_grid({"fsat": [5, 10]}))
