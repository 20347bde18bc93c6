"""Pure renderers: broker and end-of-day facts in, `AlertRecord`s (Block Kit + plain text) out.

Nothing here talks to Slack or the warehouse; the interval and end-of-day flows call these
and write the records into the outbox with their commit. Slack caps a header at 150
characters and a section at 3,000: a list shows its first `MAX_LINES` lines and "... and N
more", over as many sections as the lines need (a message holds 50 blocks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from papertrade.alerts.records import AlertKind, AlertRecord, make_alert_id, mrkdwn_escape
from papertrade.settings import AlertLevel

MAX_LINES = 20
_HEADER_LIMIT = 150
_SECTION_LIMIT = 3_000
_LEVEL_ICON = {
    AlertLevel.INFO: ":information_source:",
    AlertLevel.WARNING: ":warning:",
    AlertLevel.CRITICAL: ":rotating_light:",
}


def render_fills_alert(
    account_id: str, as_of: datetime, fills: pd.DataFrame | Sequence[Any]
) -> AlertRecord:
    """One message for all fills of an interval. `fills` is a frame with `symbol, side,
    quantity, price, commission` (the `fills` table's columns) or a sequence of `Fill`s.
    Notional is quantity * price in account currency; prices shown to the cent."""
    frame = _frame(fills)
    n = len(frame)
    lines = [
        f"{_side(row.side)} {row.quantity:g} {row.symbol} @ {row.price:,.2f}"
        for row in frame.head(MAX_LINES).itertuples()
    ]
    if n > MAX_LINES:
        lines.append(f"... and {n - MAX_LINES} more")
    notional = float((frame["quantity"] * frame["price"]).sum()) if n else 0.0
    commission = float(frame["commission"].sum()) if n and "commission" in frame else 0.0
    title = f"{n} fill{'s' if n != 1 else ''} on {account_id}"
    summary = f"notional {notional:,.2f}, commission {commission:,.2f}"
    body = "\n".join(lines)
    return _record(
        account_id,
        as_of,
        AlertKind.FILLS,
        AlertLevel.INFO,
        title,
        f"{title}: {summary}\n{body}",
        [
            _header(title),
            *_sections(lines or ["no fills"]),
            _context(f"{_ts(as_of)} · {summary}"),
        ],
    )


def render_risk_alert(event: Mapping[str, Any] | Any) -> AlertRecord:
    """A risk breach, sent at once. `event` is a mapping or an object with `account_id`,
    `ts` (UTC), `rule`, `reason` (a RejectReason-like code), `detail`, and optionally
    `level`/`severity` (default warning) and `symbol`."""
    account_id = str(_get(event, "account_id"))
    ts = _get(event, "ts") or _get(event, "as_of")
    rule = str(_get(event, "rule", "") or "")
    reason = str(_get(event, "reason", "") or "")
    detail = str(_get(event, "detail", "") or "")
    symbol = str(_get(event, "symbol", "") or "")
    level = AlertLevel(str(_get(event, "level") or _get(event, "severity") or "warning"))
    what = reason or rule or "risk breach"
    title = f"Risk: {what}{f' ({symbol})' if symbol else ''} on {account_id}"
    fields = [f"*rule* {rule}" if rule else "", f"*reason* `{reason}`" if reason else ""]
    body = "\n".join(x for x in [*fields, detail] if x)
    return _record(
        account_id,
        ts,
        AlertKind.RISK,
        level,
        title,
        f"{title}: {detail}" if detail else title,
        [_header(f"{_LEVEL_ICON[level]} {title}"), _section(body or what), _context(_ts(ts))],
    )


def render_risk_alerts(
    account_id: str, as_of: datetime, events: Sequence[Mapping[str, Any]]
) -> AlertRecord:
    """One message for an interval's breaches, as the fills are one message: a strategy
    refused for twenty symbols is one Slack post, not twenty. A single breach reads as
    `render_risk_alert`'s message."""
    if len(events) == 1:
        return render_risk_alert({"ts": as_of, **events[0], "account_id": account_id})
    lines = [
        " ".join(x for x in (f"`{e.get('reason') or e.get('rule')}`", e.get("symbol")) if x)
        + f": {_detail_after_reason(e)}"
        for e in events[:MAX_LINES]
    ]
    if len(events) > MAX_LINES:
        lines.append(f"... and {len(events) - MAX_LINES} more")
    reasons = sorted({str(e.get("reason") or e.get("rule")) for e in events})
    title = f"Risk: {len(events)} breaches on {account_id}"
    body = "\n".join(lines)
    return _record(
        account_id,
        as_of,
        AlertKind.RISK,
        AlertLevel.WARNING,
        title,
        f"{title}: {', '.join(reasons)}\n{body}",
        [
            _header(f"{_LEVEL_ICON[AlertLevel.WARNING]} {title}"),
            *_sections(lines),
            _context(_ts(as_of)),
        ],
    )


def _detail_after_reason(event: Mapping[str, Any]) -> str:
    """The detail without the reason code it starts with: the line names the reason already
    ("`NOTIONAL_EXCEEDS_MAX_PER_ORDER` META: 24001.00 > 20000.00", not the code twice)."""
    detail, reason = str(event.get("detail") or ""), str(event.get("reason") or "")
    return detail.removeprefix(f"{reason}: ") if reason else detail


def render_kill_switch_alert(
    account_id: str,
    as_of: datetime,
    state: str,
    reason: str,
    previous: str | None = None,
) -> AlertRecord:
    """A change of trading state (`active`, `reducing`, `halted`), sent at once. Halting is
    critical, reducing a warning, back to active info."""
    level = {
        "halted": AlertLevel.CRITICAL,
        "reducing": AlertLevel.WARNING,
    }.get(str(state).lower(), AlertLevel.INFO)
    change = f"{previous} -> {state}" if previous else str(state)
    title = f"Kill switch on {account_id}: {change}"
    return _record(
        account_id,
        as_of,
        AlertKind.KILL_SWITCH,
        level,
        title,
        f"{title} ({reason})",
        [_header(f"{_LEVEL_ICON[level]} {title}"), _section(reason or "-"), _context(_ts(as_of))],
    )


def render_dq_alert(
    account_id: str,
    as_of: datetime,
    failures: Sequence[Mapping[str, Any]],
    level: AlertLevel = AlertLevel.WARNING,
) -> AlertRecord:
    """Data-quality failures of one run of the checks. Each failure is a mapping with
    `check` (or `expectation`), optional `table`/`column` and `detail` (or `observed`)."""
    lines = []
    for failure in failures[:MAX_LINES]:
        check = failure.get("check") or failure.get("expectation") or "check"
        where = ".".join(str(failure[k]) for k in ("table", "column") if failure.get(k))
        detail = failure.get("detail", failure.get("observed", ""))
        lines.append(
            f"• `{check}`{f' on {where}' if where else ''}{f': {detail}' if detail else ''}"
        )
    if len(failures) > MAX_LINES:
        lines.append(f"... and {len(failures) - MAX_LINES} more")
    n = len(failures)
    title = f"Data quality: {n} failed check{'s' if n != 1 else ''} on {account_id}"
    body = "\n".join(lines)
    return _record(
        account_id,
        as_of,
        AlertKind.DATA_QUALITY,
        level,
        title,
        f"{title}\n{body}",
        [
            _header(f"{_LEVEL_ICON[level]} {title}"),
            *_sections(lines or ["-"]),
            _context(_ts(as_of)),
        ],
    )


def render_summary_alert(
    account_id: str,
    as_of: datetime,
    metrics: Mapping[str, Any] | Any,
    top_positions: pd.DataFrame | Sequence[Mapping[str, Any]] = (),
    chart_path: Path | str | None = None,
    *,
    n_positions: int | None = None,
    data_quality: str | None = None,
    trading_state: str | None = None,
) -> AlertRecord:
    """The end-of-day summary: equity, the day's return and P&L, ratios (a `Metrics` or its
    `as_dict()`; None/NaN shown as "n/a"), the largest positions by |market_value| (of
    `n_positions` held, when more), the data-quality verdict and a trading state other than
    active (the message a team reads first: a degraded or halted day must show on it), and
    the equity chart (a PNG path the sender uploads with `files_upload_v2`)."""
    m = metrics.as_dict() if hasattr(metrics, "as_dict") else dict(metrics)
    equity = m.get("end_equity", m.get("equity"))
    day_return = m.get("period_return", m.get("daily_return"))
    stats = [
        ("Equity", _money(equity)),
        ("Day", _pct(day_return)),
        ("Day P&L", _signed_money(_day_pnl(equity, day_return))),
        ("Total", _pct(m.get("total_return"))),
        ("Max DD", _pct(m.get("max_drawdown"), signed=False)),  # never above 0
        ("Sharpe", _num(m.get("sharpe"))),
        ("Sortino", _num(m.get("sortino"))),
        ("Trades", _num(m.get("n_trades"), digits=0)),
        ("Win rate", _pct(m.get("win_rate"), signed=False)),  # a share, not a change
    ]
    # a line of its own: a section holds at most 10 fields, and the stats take 9
    status = [("Data quality", data_quality)] if data_quality is not None else []
    if trading_state not in (None, "active"):
        status.append(("Trading state", str(trading_state)))
    positions = _frame(top_positions)
    if len(positions) and "market_value" in positions:
        positions = positions.reindex(
            positions["market_value"].abs().sort_values(ascending=False).index
        )
    pos_lines = [
        f"{row.symbol}: {row.quantity:g} sh, {_money(getattr(row, 'market_value', None))}"
        + (
            f" (uPnL {_money(row.unrealized_pnl)})"
            if getattr(row, "unrealized_pnl", None) is not None
            else ""
        )
        for row in positions.head(10).itertuples()
    ]
    top = "\n".join(pos_lines)
    session = as_of.date().isoformat()
    title = f"End of day {session} on {account_id}"
    stat_text = " · ".join(f"{k} {v}" for k, v in [*stats, *status])
    blocks = [
        _header(title),
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in stats],
        },
        *([_section(" · ".join(f"*{k}* {v}" for k, v in status))] if status else []),
        _section(f"{_positions_heading(len(pos_lines), n_positions)}\n{top or 'flat'}"),
        _context(_ts(as_of)),
    ]
    extra = {"chart_path": str(chart_path)} if chart_path else {}
    return _record(
        account_id,
        as_of,
        AlertKind.SUMMARY,
        AlertLevel.INFO,
        title,
        f"{title}: {stat_text}",
        blocks,
        extra,
    )


def render_gap_alert(account_id: str, as_of: datetime, missed: Sequence[datetime]) -> AlertRecord:
    """Intervals that never ran (downtime, a stopped worker). The run at `as_of` caught up
    from the current quotes instead of trading them blindly; this says how much was missed."""
    first, last = min(missed), max(missed)
    title = f"{account_id}: {len(missed)} missed interval{'s' if len(missed) != 1 else ''}"
    text = f"{title}, {_ts(first)} to {_ts(last)}; caught up at {_ts(as_of)}"
    return _record(
        account_id,
        as_of,
        AlertKind.GAP,
        AlertLevel.WARNING,
        title,
        text,
        [_header(f"{_LEVEL_ICON[AlertLevel.WARNING]} {title}"), _section(text)],
    )


# --- helpers -----------------------------------------------------------------------------


def _record(
    account_id: str,
    created_at: datetime,
    kind: AlertKind,
    level: AlertLevel,
    title: str,
    text: str,
    blocks: list[dict[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> AlertRecord:
    if created_at is None or created_at.tzinfo is None:
        raise ValueError("alert time must be a timezone-aware datetime")
    payload = json.dumps({"blocks": blocks, **(extra or {})}, sort_keys=True, default=str)
    return AlertRecord(
        account_id=account_id,
        alert_id=make_alert_id(kind, created_at, account_id, title, text),
        created_at=created_at.astimezone(UTC),
        kind=kind,
        level=level,
        title=title,
        text=_cut(text),  # a visible cut: the notification text reads as complete otherwise
        payload_json=payload,
    )


def _frame(rows: pd.DataFrame | Iterable[Any]) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows.reset_index(drop=True)
    items = [asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows]
    return pd.DataFrame(items)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _header(text: str) -> dict[str, Any]:
    cut = text if len(text) <= _HEADER_LIMIT else text[: _HEADER_LIMIT - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": cut, "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(mrkdwn_escape(text))}}


def _sections(lines: Sequence[str]) -> list[dict[str, Any]]:
    """`lines` as mrkdwn sections of at most 3,000 characters each, split between lines:
    one section cut at the limit hid every line past it, the "... and N more" included
    (twenty-one failures of end of day, three sample rows each, showed seven). A single line
    longer than a section is cut on its own."""
    chunks: list[str] = []
    for line in (_cut(mrkdwn_escape(x)) for x in lines):
        if chunks and len(chunks[-1]) + 1 + len(line) <= _SECTION_LIMIT:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks]


def _cut(text: str, limit: int = _SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn_escape(text)}]}


def _ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _side(side: Any) -> str:
    return "BUY" if str(side).lower() == "buy" else "SELL"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _money(value: Any) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number:,.2f}"


def _signed_money(value: Any) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number:+,.2f}"


def _day_pnl(equity: Any, day_return: Any) -> float | None:
    """The day's P&L in money from the close's equity and the day's return (the previous
    close is equity / (1 + return))."""
    end, r = _finite(equity), _finite(day_return)
    if end is None or r is None or r <= -1.0:
        return None
    return round(end - end / (1.0 + r), 2)


def _positions_heading(shown: int, held: int | None) -> str:
    return "*Top positions*" + (
        f" ({shown} of {held})" if held is not None and held > shown else ""
    )


def _pct(value: Any, *, signed: bool = True) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number * 100:{'+' if signed else ''}.2f}%"


def _num(value: Any, digits: int = 2) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number:.{digits}f}"
