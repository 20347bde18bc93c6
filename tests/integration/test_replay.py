"""Replay from CSV and Parquet files: the latest record at or before as_of, never later."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from paper_broker.market_data.errors import ReplayDataError
from paper_broker.market_data.replay import ReplayProvider
from paper_broker.market_data.validation import QuoteLimits, validate_quotes

T0 = pd.Timestamp("2026-03-02 14:31:00", tz="UTC")


def make_bars(symbols: tuple[str, ...] = ("AAPL", "MSFT"), n: int = 5) -> pd.DataFrame:
    rows = []
    for k, symbol in enumerate(symbols):
        for i in range(n):
            close = 100.0 * (k + 1) + i
            rows.append(
                {
                    "timestamp": T0 + pd.Timedelta(minutes=i),
                    "symbol": symbol,
                    "open": close - 0.5,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close,
                    "volume": 1000.0 + i,
                }
            )
    return pd.DataFrame(rows)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_bar_files_become_quotes_at_close(tmp_path: Path, suffix: str) -> None:
    provider = ReplayProvider(write(make_bars(), tmp_path / f"bars{suffix}"))

    quotes = provider.quotes(["AAPL", "MSFT"], T0 + pd.Timedelta(minutes=2))

    assert quotes["symbol"].tolist() == ["AAPL", "MSFT"]
    assert quotes["bid"].tolist() == [102.0, 202.0]
    assert (quotes["ask"] == quotes["bid"]).all() and (quotes["last"] == quotes["bid"]).all()
    assert (quotes["quote_ts"] == T0 + pd.Timedelta(minutes=2)).all()


def test_bar_volumes_become_the_sessions_volume_so_far(tmp_path: Path) -> None:
    # quotes carry the session's volume up to them; each session starts again
    bars = make_bars(("AAPL",), n=3)
    next_day = bars.iloc[[0]].assign(timestamp=T0 + pd.Timedelta(days=1), volume=7.0)
    provider = ReplayProvider(pd.concat([bars, next_day]).iloc[::-1])

    volumes = [
        provider.quotes(["AAPL"], T0 + offset).loc[0, "volume"]
        for offset in (pd.Timedelta(minutes=1), pd.Timedelta(minutes=2), pd.Timedelta(days=1))
    ]

    assert volumes == [1000.0 + 1001.0, 1000.0 + 1001.0 + 1002.0, 7.0]


def test_never_a_later_record(tmp_path: Path) -> None:
    provider = ReplayProvider(write(make_bars(n=10), tmp_path / "bars.csv"))

    for seconds in range(-30, 600, 17):
        as_of = T0 + pd.Timedelta(seconds=seconds)
        quotes = provider.quotes(["AAPL"], as_of)
        if seconds < 0:
            assert quotes.empty
        else:
            assert (quotes["quote_ts"] <= as_of).all()
            assert quotes.loc[0, "quote_ts"] == T0 + pd.Timedelta(minutes=min(seconds // 60, 9))


def test_bar_close_offset_for_start_labelled_files(tmp_path: Path) -> None:
    provider = ReplayProvider(
        write(make_bars(), tmp_path / "bars.csv"), bar_close_offset=timedelta(minutes=1)
    )

    quotes = provider.quotes(["AAPL"], T0 + pd.Timedelta(seconds=90))

    assert quotes.loc[0, "last"] == 100.0  # the 14:31 bar closes at 14:32, the next is unknown


def test_half_spread_makes_a_two_sided_quote(tmp_path: Path) -> None:
    provider = ReplayProvider(make_bars(), half_spread_bps=10.0)

    quote = provider.quotes(["AAPL"], T0).iloc[0]

    assert quote["bid"] == pytest.approx(99.9) and quote["ask"] == pytest.approx(100.1)


def test_old_records_are_returned_and_validation_calls_them_stale(tmp_path: Path) -> None:
    provider = ReplayProvider(make_bars(n=1))
    as_of = T0 + pd.Timedelta(minutes=10)

    out = validate_quotes(provider.quotes(["AAPL", "XYZ"], as_of), ["AAPL", "XYZ"], as_of,
                          QuoteLimits(staleness_seconds=120))  # fmt: skip

    assert out["flag_reason"].tolist() == ["stale", "missing"]


def test_quote_files(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "quote_ts": ["2026-03-02T14:31:00Z", "2026-03-02T14:31:30Z", "2026-03-02T14:32:00Z"],
            "symbol": ["AAPL"] * 3,
            "bid": [1.0, 2.0, 3.0],
            "ask": [1.1, 2.1, 3.1],
        }
    )
    provider = ReplayProvider(write(frame, tmp_path / "quotes.parquet"))

    quotes = provider.quotes(["AAPL"], pd.Timestamp("2026-03-02T14:31:59Z"))

    assert quotes["bid"].tolist() == [2.0]
    assert provider.bars(["AAPL"], T0, T0 + pd.Timedelta(hours=1)).empty


def test_quote_files_in_new_york_time_across_a_dst_change(tmp_path: Path) -> None:
    # recorded with New York offsets: -05:00 before 2026-03-08, -04:00 after
    path = tmp_path / "quotes.csv"
    path.write_text(
        "symbol,bid,ask,quote_ts\n"
        "AAPL,1.0,1.1,2026-03-06T15:59:00-05:00\n"
        "AAPL,2.0,2.1,2026-03-09T09:30:00-04:00\n"
        "MSFT,3.0,3.1,2026-03-09T13:30:00Z\n"
    )
    provider = ReplayProvider(path)

    quotes = provider.quotes(["AAPL", "MSFT"], pd.Timestamp("2026-03-09T13:30:00Z"))

    assert quotes["bid"].tolist() == [2.0, 3.0]
    assert quotes["quote_ts"].tolist() == [pd.Timestamp("2026-03-09T13:30:00Z")] * 2
    friday_close = provider.quotes(["AAPL"], pd.Timestamp("2026-03-06T21:00:00Z"))
    assert friday_close["quote_ts"].tolist() == [pd.Timestamp("2026-03-06T20:59:00Z")]


def test_bars_between_start_and_end(tmp_path: Path) -> None:
    provider = ReplayProvider(make_bars(n=10))

    bars = provider.bars(["MSFT"], T0 + pd.Timedelta(minutes=2), T0 + pd.Timedelta(minutes=4))

    assert bars["close"].tolist() == [202.0, 203.0, 204.0]
    assert (bars["symbol"] == "MSFT").all()


def test_missing_file_and_wrong_columns(tmp_path: Path) -> None:
    with pytest.raises(ReplayDataError, match="not found"):
        ReplayProvider(tmp_path / "nope.csv")
    with pytest.raises(ReplayDataError, match="needs bar columns"):
        ReplayProvider(write(pd.DataFrame({"a": [1]}), tmp_path / "bad.csv"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("timestamp,symbol,open,high,low,close,volume\n", "has no rows", id="header"),
        pytest.param("symbol,bid,ask,quote_ts\n", "has no rows", id="quotes-header"),
        pytest.param(
            "timestamp,symbol,open,high,low,close,volume\n"
            "2026-03-02T14:31:00Z,AAPL,1,1,1,1,1\nsoon,AAPL,1,1,1,1,1\n",
            "soon",
            id="bad-timestamp",
        ),
        pytest.param(
            "timestamp,symbol,open,high,low,close,volume\n2026-03-02T14:31:00Z,AAPL,1,1,1,n/a?,1\n",
            "n/a?",
            id="bad-price",
        ),
        pytest.param(
            "symbol,bid,ask,quote_ts\nAAPL,1.0,1.1,2026-03-02T14:31:00Z\nAAPL,1.0,1.1,later\n",
            "later",
            id="bad-quote-ts",
        ),
    ],
)
def test_a_file_without_usable_rows_is_one_clear_error(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "recorded.csv"
    path.write_text(text)

    with pytest.raises(ReplayDataError) as raised:
        ReplayProvider(path)

    message = str(raised.value)
    assert "recorded.csv" in message and reason in message
    assert "\n" not in message
