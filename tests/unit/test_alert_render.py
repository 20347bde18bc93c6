"""Renderers are pure: facts in, outbox records (Block Kit + text) out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from papertrade.alerts import (
    AlertKind,
    is_wanted,
    render_dq_alert,
    render_fills_alert,
    render_kill_switch_alert,
    render_risk_alert,
    render_risk_alerts,
    render_summary_alert,
)
from papertrade.alerts.sender import scrub
from papertrade.metrics import compute_metrics
from papertrade.settings import AlertLevel, SlackSettings

AS_OF = datetime(2024, 3, 5, 15, 31, tzinfo=UTC)


def fills(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": [f"S{i}" for i in range(n)],
            "side": ["buy" if i % 2 == 0 else "sell" for i in range(n)],
            "quantity": [10.0 + i for i in range(n)],
            "price": [100.0 + i for i in range(n)],
            "commission": [1.0] * n,
        }
    )


def test_fills_alert_batches_an_interval() -> None:
    record = render_fills_alert("paper", AS_OF, fills(3))

    assert record.kind is AlertKind.FILLS and record.level is AlertLevel.INFO
    assert record.title == "3 fills on paper"
    assert "BUY 10 S0 @ 100.00" in record.text and "SELL 11 S1 @ 101.00" in record.text
    notional = 10 * 100 + 11 * 101 + 12 * 102
    assert f"notional {notional:,.2f}" in record.text
    assert [b["type"] for b in record.blocks] == ["header", "section", "context"]


def test_fills_alert_cuts_long_lists() -> None:
    record = render_fills_alert("paper", AS_OF, fills(45))

    assert "... and 25 more" in record.text


def test_alert_id_is_stable_and_content_addressed() -> None:
    first = render_fills_alert("paper", AS_OF, fills(2))
    again = render_fills_alert("paper", AS_OF, fills(2))
    other = render_fills_alert("paper", AS_OF, fills(3))

    assert first.alert_id == again.alert_id
    assert first.alert_id != other.alert_id
    assert first.alert_id.startswith("fills-20240305T153100-")


def test_created_at_is_utc_and_naive_times_are_refused() -> None:
    ny = timezone(timedelta(hours=-5))
    record = render_fills_alert("paper", AS_OF.astimezone(ny), fills(1))

    assert record.created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        render_fills_alert("paper", datetime(2024, 3, 5, 15, 31), fills(1))


def test_risk_alert_from_mapping() -> None:
    event = {
        "account_id": "paper",
        "ts": AS_OF,
        "rule": "max_order_notional",
        "reason": "NOTIONAL_EXCEEDS_MAX_PER_ORDER",
        "detail": "60,000.00 > 50,000.00",
        "symbol": "AAPL",
    }

    record = render_risk_alert(event)

    assert record.kind is AlertKind.RISK and record.level is AlertLevel.WARNING
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in record.title and "AAPL" in record.title
    assert "60,000.00 > 50,000.00" in record.text


def test_an_intervals_breaches_are_one_message() -> None:
    events = [
        {"rule": "max_order_notional", "reason": "NOTIONAL_EXCEEDS_MAX_PER_ORDER",
         "detail": f"{n},000.00 > 20,000.00", "symbol": f"S{n:02d}"}
        for n in range(25)
    ]  # fmt: skip

    many = render_risk_alerts("paper", AS_OF, events)
    one = render_risk_alerts("paper", AS_OF, events[:1])

    assert many.title == "Risk: 25 breaches on paper"
    assert "`NOTIONAL_EXCEEDS_MAX_PER_ORDER` S00: 0,000.00 > 20,000.00" in many.text
    assert "S19" in many.text and "S20" not in many.text and "... and 5 more" in many.text
    assert one.title == "Risk: NOTIONAL_EXCEEDS_MAX_PER_ORDER (S00) on paper"


def test_a_breach_line_names_its_reason_once() -> None:
    # RiskGuard's detail starts with the reason code, which the line already shows
    events = [
        {"reason": "NOTIONAL_EXCEEDS_MAX_PER_ORDER", "symbol": s,
         "detail": f"NOTIONAL_EXCEEDS_MAX_PER_ORDER: {v} > 20000.00"}
        for s, v in (("META", "24001.00"), ("XOM", "46734.00"))
    ]  # fmt: skip

    record = render_risk_alerts("paper", AS_OF, events)

    assert "`NOTIONAL_EXCEEDS_MAX_PER_ORDER` META: 24001.00 > 20000.00\n" in record.text
    assert record.text.count("NOTIONAL_EXCEEDS_MAX_PER_ORDER") == 3  # the title's and one a line


@pytest.mark.parametrize(
    ("state", "level"),
    [
        ("halted", AlertLevel.CRITICAL),
        ("reducing", AlertLevel.WARNING),
        ("active", AlertLevel.INFO),
    ],
)
def test_kill_switch_levels(state: str, level: AlertLevel) -> None:
    record = render_kill_switch_alert("paper", AS_OF, state, "drawdown 21%", previous="active")

    assert record.level is level
    assert f"active -> {state}" in record.title and "drawdown 21%" in record.text


def test_dq_alert_lists_failures() -> None:
    failures = [
        {"check": "expect_column_values_to_not_be_null", "table": "quotes", "column": "bid"},
        {"expectation": "ledger_reconciles", "detail": "cash off by 3.20"},
    ]

    record = render_dq_alert("paper", AS_OF, failures)

    assert record.title == "Data quality: 2 failed checks on paper"
    assert "quotes.bid" in record.text and "cash off by 3.20" in record.text


def test_a_long_dq_alert_shows_every_failed_check_within_slacks_section_limit() -> None:
    """End of day's failures carry three sample rows each (about 450 characters): one
    section of 3,000 characters named 7 of 21 checks, the seventh cut mid-line with "…",
    and the other 14 (the "... and 1 more" line included) never reached Slack. The lines
    now fill as many sections as they need."""
    row = {"account_id": "paper", "symbol": "AAPL", "bid": 180.12, "ask": 179.98, "valid": True}
    sample = json.dumps([{**row, "as_of": f"2024-03-05T15:{m:02d}:00+00:00"} for m in range(3)])
    detail = f"observed 40 of 780 rows unexpected; 40 rows; {sample}"
    failures = [{"check": f"quotes.check_{i:02d}", "detail": detail} for i in range(21)]

    record = render_dq_alert("paper", AS_OF, failures)

    sections = [b["text"]["text"] for b in record.blocks if b["type"] == "section"]
    shown = "\n".join(sections)
    assert all(len(text) <= 3000 for text in sections)
    assert len(record.blocks) <= 50
    assert all(f"quotes.check_{i:02d}" in shown for i in range(20))
    assert "… and 1 more" in shown or "... and 1 more" in shown
    assert "…\n" not in shown and not shown.endswith("…")  # no line cut in the middle
    # the plain text (notifications, the console) is cut where it must be, visibly
    assert len(record.text) == 3000 and record.text.endswith("…")


def test_summary_alert_carries_metrics_positions_and_chart(tmp_path) -> None:
    index = pd.date_range("2024-03-01", periods=3, tz="UTC")
    metrics = compute_metrics(pd.Series([100.0, 110.0, 104.5], index=index))
    positions = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT"],
            "quantity": [10.0, -5.0],
            "market_value": [1_500.0, -2_000.0],
            "unrealized_pnl": [12.0, -3.0],
        }
    )
    chart = tmp_path / "equity.png"

    record = render_summary_alert("paper", AS_OF, metrics, positions, chart)

    assert record.kind is AlertKind.SUMMARY
    assert record.chart_path == str(chart)
    assert "Equity 104.50" in record.text and "Total +4.50%" in record.text
    assert "Win rate n/a" in record.text  # undefined values are shown, not crashed on
    payload = json.loads(record.payload_json)
    top = payload["blocks"][2]["text"]["text"]
    assert top.index("MSFT") < top.index("AAPL")  # ordered by |market value|


def test_summary_shows_day_pnl_data_quality_state_and_how_many_positions_are_held() -> None:
    index = pd.date_range("2024-03-01", periods=3, tz="UTC")
    metrics = compute_metrics(pd.Series([100_000.0, 100_400.0, 99_919.50], index=index))
    positions = pd.DataFrame(
        {"symbol": [f"S{i}" for i in range(5)], "quantity": [1.0] * 5, "market_value": [1.0] * 5}
    )

    record = render_summary_alert(
        "paper", AS_OF, metrics, positions, n_positions=12,
        data_quality="degraded: 2 of 40 checks failed", trading_state="halted",
    )  # fmt: skip

    # the day: 99,919.50 against the previous close of 100,400
    assert "Day -0.48%" in record.text and "Day P&L -480.50" in record.text
    assert "Data quality degraded: 2 of 40 checks failed" in record.text
    assert "Trading state halted" in record.text
    blocks = json.loads(record.payload_json)["blocks"]
    assert len(blocks[1]["fields"]) <= 10  # Slack refuses a section of more
    assert blocks[2]["text"]["text"] == (
        "*Data quality* degraded: 2 of 40 checks failed · *Trading state* halted"
    )
    assert blocks[3]["text"]["text"].startswith("*Top positions* (5 of 12)\n")


def test_summary_of_a_clean_active_day_says_data_quality_ok_and_no_state() -> None:
    index = pd.date_range("2024-03-01", periods=2, tz="UTC")
    metrics = compute_metrics(pd.Series([100.0, 110.0], index=index))

    record = render_summary_alert(
        "paper", AS_OF, metrics, data_quality="ok", trading_state="active"
    )

    assert "Day P&L +10.00" in record.text and "Data quality ok" in record.text
    assert "Trading state" not in record.text
    assert "*Top positions*\nflat" in record.payload_json.replace("\\n", "\n")


@pytest.mark.parametrize(
    ("kind", "level", "overrides", "wanted"),
    [
        (AlertKind.FILLS, AlertLevel.INFO, {}, True),
        (AlertKind.FILLS, AlertLevel.INFO, {"send_fills": False}, False),
        (AlertKind.FILLS, AlertLevel.INFO, {"min_level": "warning"}, False),
        (AlertKind.RISK, AlertLevel.WARNING, {"min_level": "warning"}, True),
        (AlertKind.KILL_SWITCH, AlertLevel.CRITICAL, {"send_risk": False}, False),
        (AlertKind.DATA_QUALITY, AlertLevel.CRITICAL, {"min_level": "critical"}, True),
        (AlertKind.SUMMARY, AlertLevel.INFO, {"send_summary": False}, False),
    ],
)
def test_is_wanted_by_kind_and_level(kind, level, overrides, wanted) -> None:
    assert is_wanted(kind, level, SlackSettings(**overrides)) is wanted


def test_scrub_removes_tokens_and_webhook_urls() -> None:
    text = "failed xoxb-123-456-abc at https://hooks.slack.com/services/T/B/x and s3cr3t"

    cleaned = scrub(text, "s3cr3t")

    assert "xoxb" not in cleaned and "hooks.slack.com" not in cleaned and "s3cr3t" not in cleaned


def test_a_win_rate_is_a_share_without_a_sign() -> None:
    record = render_summary_alert("paper", AS_OF, {"win_rate": 0.12, "total_return": 0.12})

    assert "Win rate 12.00%" in record.text and "Total +12.00%" in record.text


def test_a_drawdown_has_no_plus_sign() -> None:
    # a drawdown is at most 0: "+0.00%" read as a gain
    flat = render_summary_alert("paper", AS_OF, {"max_drawdown": 0.0})
    down = render_summary_alert("paper", AS_OF, {"max_drawdown": -0.031})

    assert "Max DD 0.00%" in flat.text and "Max DD -3.10%" in down.text
