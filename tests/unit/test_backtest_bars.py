"""Parquet bars go from Arrow to the panel without pandas; the panel and every refusal must
be those of the pandas path (`panel_from_frame`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from papertrade.backtest.bars import BarPanel, BarsFileError, load_bars, panel_from_frame
from tests.unit.test_backtest_engine import bars_frame


def messy() -> pd.DataFrame:
    """Symbols unsorted within a bar and padded with spaces, a missing bar, integer volume."""
    frame = bars_frame({"BBB": [20.0, 21.0, 22.0], "AAA": [10.0, 11.0, 12.0], "CC": [5.0] * 3})
    frame = frame.sort_values(["timestamp", "symbol"], ascending=[True, False], kind="stable")
    frame = frame.drop(frame.index[4]).reset_index(drop=True)
    frame["symbol"] = frame["symbol"].replace({"AAA": " AAA"})
    frame["volume"] = np.arange(len(frame), dtype=np.int64) * 100
    return frame


def write(frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path, index=False)
    return path


def assert_same(got: BarPanel, want: BarPanel) -> None:
    assert got.symbols == want.symbols
    assert got.timestamps.equals(want.timestamps)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


@pytest.mark.parametrize("naive", [False, True])
def test_parquet_panel_equals_the_pandas_panel(tmp_path, naive):
    # Arrange
    frame = messy()
    if naive:
        frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    path = write(frame, tmp_path)

    # Act
    panel = load_bars(path)

    # Assert
    assert_same(panel, panel_from_frame(frame))
    assert panel.symbols == ("AAA", "BBB", "CC")
    assert np.isnan(panel.close).sum() == 1


def test_parquet_rows_in_any_order_give_the_same_panel(tmp_path):
    frame = messy()

    panel = load_bars(write(frame.iloc[::-1].reset_index(drop=True), tmp_path))

    assert_same(panel, panel_from_frame(frame))


def test_text_timestamps_in_parquet_take_the_pandas_path(tmp_path):
    # Arrange
    frame = messy()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    # Act
    panel = load_bars(write(frame, tmp_path))

    # Assert
    assert_same(panel, panel_from_frame(messy()))


def _edit(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    out = frame.copy()
    out.loc[row, column] = value
    return out


@pytest.mark.parametrize(
    "mutate",
    [
        lambda f: _edit(f.iloc[::-1].reset_index(drop=True), 3, "close", 0.0),
        lambda f: pd.concat([f.iloc[:2], f.iloc[1:2], f.iloc[2:]]).reset_index(drop=True),
        lambda f: _edit(f, 3, "close", 0.0),
        lambda f: _edit(f, 2, "open", np.nan),
        lambda f: _edit(f, 1, "high", 1.0),
        lambda f: _edit(f, 4, "volume", -1),
        lambda f: _edit(f, 5, "symbol", None),
        lambda f: _edit(f, 5, "symbol", "  "),
        lambda f: _edit(f, 3, "close", np.inf),
        lambda f: _edit(f.astype({"volume": float}), 4, "volume", np.inf),
        lambda f: f.drop(columns=["low"]),
    ],
)
def test_parquet_refusals_match_the_pandas_path(tmp_path, mutate):
    # Arrange
    frame = mutate(messy())
    path = write(frame, tmp_path)
    with pytest.raises(BarsFileError) as expected:
        panel_from_frame(frame, source=str(path))

    # Act
    with pytest.raises(BarsFileError) as got:
        load_bars(path)

    # Assert: the same words (a raw cell may print as a Python float rather than numpy's)
    assert str(got.value).replace("np.float64(", "").rstrip(")") == str(expected.value).replace(
        "np.float64(", ""
    ).rstrip(")")


def test_a_file_that_is_not_parquet_is_a_user_error(tmp_path):
    # Arrange
    path = tmp_path / "bars.parquet"
    path.write_text("timestamp,symbol\n")

    # Act / Assert
    with pytest.raises(BarsFileError, match="cannot be read"):
        load_bars(path)
