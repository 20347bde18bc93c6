"""One trading interval as plain functions: the steps the `trading-interval` flow's tasks call.

    open_run -> fetch_quotes -> run_strategy -> risk_check -> simulate_fills -> persist -> notify

`open_run` loads everything the interval decides on from the warehouse (the broker as the last
commit left it, the trading state, equity marks for the guards, the price history); the middle
steps are pure calls into `paper_broker` and `strategies`; `persist` writes the whole outcome
in one transaction. The flow wraps each step in a Prefect task; benchmarks, the soak and the
tests call them directly, so the orchestrated and the bare paths cannot drift apart.

Exactly once: nothing is written before `persist`, client order ids are a function of
(account, as_of, strategy, sequence), and an interval already committed is answered from its
stored summary. A run killed at any step and run again therefore commits one set of fills.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paper_broker.broker import PaperBroker
from paper_broker.enums import RejectReason, TradingState
from paper_broker.ids import client_order_id
from paper_broker.market_data.protocol import MarketDataProvider
from paper_broker.market_data.validation import QuoteLimits, validate_quotes
from paper_broker.records import BrokerState, Fill, Order, OrderIntent, Rejection
from paper_broker.risk.batch import strategy_intents
from paper_broker.risk.events import RiskEvent
from paper_broker.risk.guard import (
    GuardOutcome,
    RiskDecision,
    RiskGuard,
    flatten_intents,
    risk_rejected_order,
)
from papertrade.alerts.records import AlertRecord, is_wanted
from papertrade.alerts.render import (
    render_fills_alert,
    render_gap_alert,
    render_kill_switch_alert,
    render_risk_alerts,
)
from papertrade.calendar import MarketCalendar, Session
from papertrade.errors import UserError
from papertrade.recorded_settings import recorded_settings_json, settings_changed
from papertrade.risk_wiring import risk_config_from_settings
from papertrade.settings import Settings
from papertrade.wiring import broker_config_from_settings
from strategies.base import Strategy
from strategies.registry import load_strategy
from warehouse.run_lock import AccountBusy, account_run_lock

log = logging.getLogger("papertrade.interval")


class IntervalStatus(StrEnum):
    """How a run of an interval ended (the `status` of its summary)."""

    COMMITTED = "committed"
    ALREADY_COMMITTED = "already_committed"
    MARKET_CLOSED = "market_closed"
    BUSY = "busy"
    LATE = "late"


@dataclass
class IntervalRun:
    """The state of one interval between its steps. Built by `open_run`."""

    settings: Settings
    as_of: datetime
    session: Session | None
    is_last_of_session: bool
    broker: PaperBroker
    strategy: Strategy
    trading_state: TradingState
    session_start_equity: float
    peak_equity: float
    history: pd.DataFrame
    previous_mids: dict[str, float]
    last_committed: datetime | None
    # providers quote the session's volume so far; this is it at the last committed
    # interval of the same session (see `fill_quotes`)
    previous_volumes: dict[str, float] = field(default_factory=dict)
    # (reason, symbol) of the refusals of the last committed interval of the same session:
    # one repeated here is not posted again (`_alerts`)
    previous_breaches: frozenset[tuple[str, str]] = frozenset()
    gap: list[datetime] = field(default_factory=list)
    warmup_bars: pd.DataFrame | None = None
    new_account: bool = False
    # the broker state the run was loaded from (None for a new account): a run that must
    # decide again (`persist`) starts from it
    loaded_state: BrokerState | None = None
    # where the daily loss guard measures from: the session's start, or the equity at a
    # manual resume during the session (None: `session_start_equity`)
    guard_start_equity: float | None = None
    # the trading state the run began in was set by a guard: with `flatten_on_halt`, a
    # guard's halt goes on closing what its first flatten could not
    state_set_by_guard: bool = False
    # the settings differ from those recorded for the account: the commit records them
    settings_changed: bool = False
    # filled in by the steps
    quotes: pd.DataFrame | None = None
    # the quotes with the interval's own volume, which both fill passes use (`fill_quotes`)
    broker_quotes: pd.DataFrame | None = None
    intents: list[OrderIntent] = field(default_factory=list)
    decision: RiskDecision | None = None
    guard: GuardOutcome | None = None
    rejections: list[Rejection] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    @property
    def account_id(self) -> str:
        return self.settings.account.id


def resolve_as_of(
    as_of: datetime | None, scheduled: datetime | None, calendar: MarketCalendar
) -> datetime:
    """The explicit `as_of`, else the flow run's scheduled start, else now; floored to the
    interval so a run that starts a few seconds late still names its interval."""
    chosen = as_of or scheduled or datetime.now(UTC)
    return calendar.floor(chosen)


def late_summary(
    settings: Settings, scheduled: datetime, now: datetime, calendar: MarketCalendar
) -> dict[str, Any] | None:
    """The summary of a scheduled run that starts a whole interval or more after its slot,
    else None. Prefect runs the runs a stopped worker missed once it is back, each named by
    its own slot: trading them now would trade past intervals on today's quotes (a live
    provider's are a later interval's, flagged as such) and record no gap. They are
    skipped; the first run on time catches up and records the gap."""
    slot = calendar.floor(scheduled)
    late = now - scheduled
    if late < calendar.interval:
        return None
    return {
        "account_id": settings.account.id,
        "as_of": slot.isoformat(),
        "status": IntervalStatus.LATE,
        "late_seconds": round(late.total_seconds(), 1),
    }


def open_run(
    settings: Settings,
    as_of: datetime,
    provider: MarketDataProvider,
    *,
    force: bool = False,
    calendar: MarketCalendar | None = None,
) -> IntervalRun | dict[str, Any]:
    """Load what the interval decides on. Returns a summary dict instead of a run when there
    is nothing to do: the market is closed, or this interval is already committed.

    The warehouse is opened for the load only; `persist` opens it again to commit, so the
    file is free while the provider answers (see `run_interval`)."""
    calendar = calendar or MarketCalendar.for_market(settings.market_data)
    session = calendar.session_at(as_of)
    account = settings.account.id
    if session is None and not force:
        return {
            "account_id": account,
            "as_of": as_of.isoformat(),
            "status": IntervalStatus.MARKET_CLOSED,
        }
    strategy = load_paper_strategy(settings)
    from warehouse.connection import connect

    timeout = settings.warehouse.lock_timeout_seconds
    with connect(settings.warehouse.path, timeout=timeout) as db:
        marks = load_account_marks(db, account, as_of, session, settings.account.initial_cash)
        if marks.committed_summary is not None:
            return {**marks.committed_summary, "status": IntervalStatus.ALREADY_COMMITTED}
        state, history, prev_mids = _load(db, settings, as_of, marks)
        recorded = recorded_settings_json(db, account, as_of)
        volumes = previous_volumes(db, account, marks.last_before, session)
        breaches = (
            previous_breaches(db, account, marks.last_before, session)
            if marks.last_risk_events != 0  # a query of 1.6 ms most intervals need not ask
            else frozenset()
        )
    last = marks.last_before
    symbols = settings.universe.symbols
    broker = _broker(settings, state)
    gap = calendar.intervals_between(last, as_of) if last is not None else []
    warmup = None
    n_bars = settings.market_data.history_bars
    if len(history) < n_bars and last is None:
        warmup = _warmup_bars(provider, symbols, as_of, n_bars - len(history), calendar)
        history = _merge_history(_closes(warmup), history, n_bars)
    is_last = session is not None and as_of + calendar.interval >= session.close
    return IntervalRun(
        settings=settings,
        as_of=as_of,
        session=session,
        is_last_of_session=is_last,
        broker=broker,
        strategy=strategy,
        trading_state=marks.trading_state,
        session_start_equity=marks.session_start_equity,
        peak_equity=marks.peak_equity,
        guard_start_equity=marks.guard_start_equity,
        state_set_by_guard=marks.set_by_guard,
        history=history,
        previous_mids=prev_mids,
        last_committed=last,
        previous_volumes=volumes,
        previous_breaches=breaches,
        gap=gap,
        warmup_bars=warmup,
        new_account=state is None,
        loaded_state=state,
        settings_changed=settings_changed(recorded, settings),
    )


def fetch_quotes(run: IntervalRun, provider: MarketDataProvider) -> pd.DataFrame:
    """Quotes for the universe at `as_of`, each valid or flagged with its reason."""
    symbols = run.settings.universe.symbols
    raw = provider.quotes(symbols, run.as_of)
    limits = QuoteLimits.from_settings(run.settings.market_data)
    run.quotes = validate_quotes(raw, symbols, run.as_of, limits, run.previous_mids)
    return run.quotes


def run_strategy(run: IntervalRun) -> list[OrderIntent]:
    """Bring resting orders and marks up to date with the new quotes, then ask the strategy.

    Resting orders are filled first so the strategy decides on the portfolio as it really
    is; after downtime that is how missed intervals are caught up without trading blindly."""
    assert run.quotes is not None
    _resting_fills(run)
    valid = run.quotes[run.quotes["valid"]]
    # the mids as one row, built from a 2-D array: a DataFrame of a list of Series costs
    # pandas a conversion per symbol
    mids = (valid["bid"].to_numpy() + valid["ask"].to_numpy()) / 2
    latest = pd.DataFrame(
        mids[np.newaxis, :],
        index=pd.DatetimeIndex([run.as_of]),
        columns=pd.Index(valid["symbol"].to_numpy(), name="symbol"),
    )
    history = _merge_history(run.history, latest, None)
    intents = strategy_intents(
        run.strategy.generate(history, valid, run.broker.portfolio_view(), run.as_of),
        run.strategy.name,
    )
    run.intents = _numbered(intents, run.account_id, run.as_of)
    return run.intents


def risk_check(run: IntervalRun) -> RiskDecision:
    """Portfolio guards first (they may tighten the trading state), then every intent."""
    assert run.quotes is not None
    guard = RiskGuard(risk_config_from_settings(run.settings))
    account = run.broker.account()
    peak = max(run.peak_equity, account.equity)
    start = run.session_start_equity if run.guard_start_equity is None else run.guard_start_equity
    run.guard = guard.evaluate_portfolio(account.equity, start, peak, run.trading_state, run.as_of)
    intents = run.intents
    valid = run.quotes[run.quotes["valid"]]
    if run.guard.flatten:
        flatten = flatten_intents(run.broker.portfolio_view())
        intents = _numbered(flatten, run.account_id, run.as_of)
    elif _still_flattening(run, guard.config):
        # only what can trade now: a symbol still without a valid quote (or restricted)
        # waits, instead of a refusal and its alert at every interval of the halt
        tradable = set(valid["symbol"])
        flatten = [
            i
            for i in flatten_intents(_unflattened(run.broker.portfolio_view()))
            if i.symbol in tradable and i.symbol.upper() not in guard.config.restricted_symbols
        ]
        intents = _numbered(flatten, run.account_id, run.as_of)
    run.decision = guard.check(
        intents, run.broker.portfolio_view(), valid, run.guard.state, now=run.as_of
    )
    return run.decision


def _still_flattening(run: IntervalRun, config: Any) -> bool:
    """A guard halted the account with `flatten_on_halt` in an earlier interval: what its
    flatten could not close then (a symbol without a valid quote at the halt) is closed as
    soon as it can be, not held for good."""
    return bool(
        config.flatten_on_halt
        and run.state_set_by_guard
        and run.trading_state is TradingState.HALTED
        and run.guard is not None
        and run.guard.state is TradingState.HALTED
    )


def _unflattened(view: Any) -> Any:
    """The view with the positions the working orders leave open: an interval that began
    halted canceled every other order before the strategy ran, so the working ones are the
    rest of earlier flatten orders, which must not be sent twice."""
    symbols = set(view.positions) | set(view.pending_buy) | set(view.pending_sell)
    left = {
        s: view.positions.get(s, 0.0) + view.pending_buy.get(s, 0.0) - view.pending_sell.get(s, 0.0)
        for s in symbols
    }
    return replace(view, positions=left)


def simulate_fills(run: IntervalRun) -> list[Fill]:
    """Submit what risk approved and fill it against this interval's quotes; at the last
    interval of the session, day orders expire."""
    assert run.decision is not None and run.broker_quotes is not None and run.guard is not None
    if run.guard.state is not run.trading_state:
        # a guard that tripped in this interval stops the resting orders before anything
        # fills (the state the interval began in stopped them before the strategy ran)
        run.broker.cancel_for_state(run.guard.state, run.as_of)
    result = run.broker.submit(run.decision.approved, run.as_of)
    run.rejections = [*run.decision.rejections, *result.rejections]
    run.broker.process_quotes(run.broker_quotes, run.as_of)
    if run.is_last_of_session:
        run.broker.expire_day_orders(run.as_of)
    changes = run.broker.drain_changes()
    run.orders = [*changes.orders, *_risk_rejected_orders(run)]
    run.fills = changes.fills
    return run.fills


def build_commit(run: IntervalRun) -> Any:
    """Everything the interval writes, as one `IntervalCommit`."""
    from warehouse.commit import EquityRow, IntervalCommit

    assert run.decision is not None and run.guard is not None
    state = run.broker.snapshot()
    account = run.broker.account()
    events = [*run.guard.events, *run.decision.events]
    new_state = run.guard.state
    changed = new_state is not run.trading_state
    return IntervalCommit(
        account_id=run.account_id,
        as_of=run.as_of,
        session_date=run.session.date if run.session else None,
        state=state,
        quotes=run.quotes,
        orders=run.orders,
        fills=run.fills,
        positions=state.positions,
        equity=EquityRow(
            ts=run.as_of,
            cash=account.cash,
            positions_value=account.positions_value,
            equity=account.equity,
            gross_exposure=account.gross_exposure,
            net_exposure=account.net_exposure,
            realized_pnl=account.realized_pnl,
            unrealized_pnl=account.unrealized_pnl,
        ),
        risk_events=[e.as_row() for e in events],
        alerts=[a.as_row() for a in _alerts(run, events, changed)],
        trading_state=(new_state, _state_reason(events)) if changed else None,
        n_rejections=len(run.rejections),
        gap_intervals=len(run.gap),
        initial_cash=run.settings.account.initial_cash,
        config_json=(
            run.settings.model_dump_json() if run.new_account or run.settings_changed else None
        ),
        bars=run.warmup_bars,
        based_on=run.last_committed,
        check_based_on=True,
        based_on_state=run.trading_state,
        orders_complete=True,
        extra={
            "day_pnl": account.equity - run.session_start_equity,
            "gross_exposure": account.gross_exposure,
            "trading_state": new_state.value,
        },
    )


# how often a run decides again when the kill switch keeps moving under it
_MAX_REDECIDE = 3


def persist(run: IntervalRun, on_stage: Any = None) -> dict[str, Any]:
    """Commit the interval in one transaction; an already committed one is a no-op.

    `papertrade kill-switch` does not wait for a running interval (it must answer while a
    provider is slow), so the state may have moved since the run loaded it: the commit
    then refuses, and the run decides again from its loaded state and the same quotes in
    the new state, so a halt that was answered is never followed by the running
    interval's trades."""
    from warehouse.commit import TradingStateChanged, commit_interval

    for attempt in range(_MAX_REDECIDE + 1):
        try:
            result = commit_interval(
                run.settings.warehouse.path,
                build_commit(run),
                timeout=run.settings.warehouse.lock_timeout_seconds,
                on_stage=on_stage,
            )
            break
        except TradingStateChanged as exc:
            if attempt == _MAX_REDECIDE:
                raise
            log.warning("%s: deciding again", exc)
            redecide(run)
    status = IntervalStatus.COMMITTED if result.committed else IntervalStatus.ALREADY_COMMITTED
    return {**result.summary, "status": status}


def redecide(run: IntervalRun) -> None:
    """Run the interval's decisions again from the state it was loaded from, with the
    trading state and guard marks the warehouse holds now and the quotes already fetched."""
    from warehouse.connection import connect

    settings = run.settings
    with connect(
        settings.warehouse.path, read_only=True, timeout=settings.warehouse.lock_timeout_seconds
    ) as db:
        marks = load_account_marks(
            db, run.account_id, run.as_of, run.session, settings.account.initial_cash
        )
    run.broker = _broker(settings, run.loaded_state)
    run.trading_state = marks.trading_state
    run.session_start_equity = marks.session_start_equity
    run.peak_equity = marks.peak_equity
    run.guard_start_equity = marks.guard_start_equity
    run.state_set_by_guard = marks.set_by_guard
    run_strategy(run)
    risk_check(run)
    simulate_fills(run)


def _broker(settings: Settings, state: BrokerState | None) -> PaperBroker:
    """The account's broker: restored from `state`, or new (`None`) with the initial cash."""
    config = broker_config_from_settings(settings)
    symbols = settings.universe.symbols
    if state is None:
        return PaperBroker(settings.account.id, settings.account.initial_cash, config, symbols)
    return PaperBroker.from_state(state, config, symbols)


def notify(
    settings: Settings,
    sender: Any = None,
    pending: int | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """Send what waits in the outbox for `account_id` (default the settings' account).
    Never raises: trading does not depend on Slack. `pending` is the account's outbox size
    the commit saw; zero skips opening the file again.

    Only the account's own rows: accounts sharing a warehouse each have their own `[slack]`
    settings, and one account's run must neither post another's alerts to its channel (or
    print them and mark them done) nor be held up by another's failing Slack."""
    from papertrade.alerts.outbox import deliver_pending

    if pending == 0:
        return {"sent": 0, "printed": 0, "pending": 0}
    account = account_id if account_id is not None else settings.account.id
    try:
        report = deliver_pending(settings.warehouse.path, settings, sender, account_id=account)
    except Exception as exc:  # the outbox keeps the rows; the next interval retries them
        log.warning("alert delivery failed: %s", type(exc).__name__)
        return {"error": type(exc).__name__}
    out: dict[str, Any] = {
        "sent": report.sent,
        "printed": report.printed,
        "pending": report.pending,
    }
    # why alerts still wait (a revoked token, a rate limit), for `interval --json` and the
    # flow's result, not only the log line
    return out | ({"error": report.error} if report.error else {})


def run_interval(
    settings: Settings,
    as_of: datetime,
    provider: MarketDataProvider,
    *,
    force: bool = False,
    calendar: MarketCalendar | None = None,
    sender: Any = None,
) -> dict[str, Any]:
    """All steps in-process, without Prefect: the engine the flow orchestrates.

    The account's run lock is held throughout; the warehouse file only while the state is
    loaded and while the interval commits. The provider's calls in between (quotes, a new
    account's warm-up bars) take as long as the network makes them, with retries, and
    holding the file through them would refuse every reader and writer meanwhile, the
    kill switch an operator reaches for when the provider misbehaves included."""
    try:
        with account_lock(settings), nothing_left_on_failure(settings):
            run = open_run(settings, as_of, provider, force=force, calendar=calendar)
            if isinstance(run, dict):
                summary, pending = run, None
            else:
                fetch_quotes(run, provider)
                run_strategy(run)
                risk_check(run)
                simulate_fills(run)
                summary = persist(run)
                pending = summary.get("pending_alerts")
    except AccountBusy as exc:
        return busy_summary(settings, as_of, exc)
    # after the connection is closed: Slack is slow, and the outbox needs the file
    if summary["status"] in (IntervalStatus.COMMITTED, IntervalStatus.ALREADY_COMMITTED):
        # a retry of a committed interval delivers what its first run left pending (a crash
        # between the commit and the Slack post) instead of leaving it to the next interval
        summary = delivered(summary, notify(settings, sender, pending))
    return summary


def delivered(summary: dict[str, Any], delivery: dict[str, Any]) -> dict[str, Any]:
    """The summary with its alert delivery: `pending_alerts` becomes what still waits after
    it (the commit counted the outbox before anything was sent)."""
    pending = delivery.get("pending", summary.get("pending_alerts"))
    return {**summary, "notify": delivery, "pending_alerts": pending}


@contextmanager
def nothing_left_on_failure(settings: Settings) -> Iterator[None]:
    """An interval that creates the warehouse file (the account's first) and fails before
    its commit removes the file again: `open_run` creates it to load the empty state, and
    the failure (a provider refusing the key, say) comes after that connection closed, so
    `connect`'s own clean-up of a file it created cannot see it."""
    path = settings.warehouse.path
    new = not path.exists()
    try:
        yield
    except BaseException:
        if new:
            from warehouse.connection import discard_if_empty

            with suppress(Exception):  # the interval's own error is the one to report
                discard_if_empty(path, settings.warehouse.lock_timeout_seconds)
        raise


def account_lock(settings: Settings) -> AbstractContextManager[None]:
    """Hold the account's run lock from loading the state to the commit."""
    return account_run_lock(
        Path(settings.warehouse.path), settings.account.id, settings.warehouse.lock_timeout_seconds
    )


def busy_summary(settings: Settings, as_of: datetime, exc: Exception) -> dict[str, Any]:
    log.warning("%s", exc)
    return {
        "account_id": settings.account.id,
        "as_of": as_of.isoformat(),
        "status": IntervalStatus.BUSY,
        "detail": str(exc),
    }


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class AccountMarks:
    """What the guards and the catch-up need from the account's past, as of one interval:
    the last interval committed before it, the latest committed at all, the equity before
    the session opened (at least the account's initial cash for a new account; the day's
    P&L is measured from it), the equity peak the drawdown guard measures from, the equity
    the daily loss guard measures from (None: `session_start_equity`); whether this
    interval is committed already (and its stored summary), and the account's current
    trading state.

    The guards measure from the last manual resume (`kill-switch off`) of a state a guard
    set, when there is one: the peak is the highest equity since the last snapshot before
    the resume, and during the session of the resume the daily loss counts from that
    snapshot. Measured from the account's all-time peak, a drawdown halt tripped again at
    the first interval after every resume, so the account could never trade again."""

    last_before: datetime | None
    latest: datetime | None
    session_start_equity: float
    peak_equity: float
    committed_summary: dict[str, Any] | None = None
    trading_state: TradingState = TradingState.ACTIVE
    kind: str = "paper"
    guard_start_equity: float | None = None
    # the current trading state was set by a guard (not by hand)
    set_by_guard: bool = False
    # risk events the last interval before recorded (None: not known, a marker before v6)
    last_risk_events: int | None = None


def load_account_marks(
    conn: Any,
    account_id: str,
    as_of: datetime,
    session: Session | None,
    initial_cash: float,
    *,
    resumed_before: datetime | None = None,
) -> AccountMarks:
    """`initial_cash` stands in for an account that is not registered yet.

    The trading state is the latest row, and so is the manual resume the guards measure
    from; `resumed_before` looks only at resumes stamped before it (a replay, which takes
    the state before each interval too).

    One aggregate per table: DuckDB plans a query of many scalar subqueries several times
    slower than the same subqueries asked one by one."""
    from warehouse.marker import committed_summary

    since = session.open if session is not None else as_of
    params: dict[str, Any] = {
        "account": account_id, "as_of": as_of, "since": since, "before": resumed_before
    }  # fmt: skip

    def rows(sql: str) -> list[Any]:
        # DuckDB refuses named parameters a statement does not use
        return conn.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()

    ((last, latest, done, last_risk_events),) = rows(
        "SELECT max(as_of) FILTER (WHERE as_of < $as_of), max(as_of), bool_or(as_of = $as_of),"
        " arg_max(n_risk_events, as_of) FILTER (WHERE as_of < $as_of)"
        " FROM intervals WHERE account_id = $account"
    )
    changes = rows(
        "SELECT ts, state, source FROM trading_state WHERE account_id = $account ORDER BY ts"
    )
    trading = changes[-1][1] if changes else None
    by_guard = bool(changes) and changes[-1][2] == "guard"
    resumed = lifted_guard_at(changes, resumed_before)
    params["resumed"] = resumed
    ((start, peak, at_resume, since_resume),) = rows(
        "SELECT arg_max(equity, ts) FILTER (WHERE ts < $since),"
        " max(equity) FILTER (WHERE ts < $as_of),"
        " arg_max(equity, ts) FILTER (WHERE ts <= $resumed::TIMESTAMPTZ AND ts < $as_of),"
        " max(equity) FILTER (WHERE ts > $resumed::TIMESTAMPTZ AND ts < $as_of)"
        " FROM equity WHERE account_id = $account"
    )
    ((initial, kind),) = rows(
        "SELECT max(initial_cash), max(kind) FROM accounts WHERE account_id = $account"
    )
    initial = float(initial) if initial is not None else initial_cash
    session_start = float(start) if start is not None else initial
    peak_equity = max(float(peak) if peak is not None else initial, initial)
    guard_start = None
    if at_resume is not None:
        # a resume acknowledges the losses before it: the guards count from its equity
        peak_equity = max(float(at_resume), float(since_resume or at_resume))
        if resumed >= since:
            guard_start = float(at_resume)
    return AccountMarks(
        last_before=last.astimezone(UTC) if last is not None else None,
        latest=latest.astimezone(UTC) if latest is not None else None,
        session_start_equity=session_start,
        peak_equity=peak_equity,
        committed_summary=committed_summary(conn, account_id, as_of) if done else None,
        trading_state=TradingState(trading) if trading is not None else TradingState.ACTIVE,
        kind=kind or "paper",
        guard_start_equity=guard_start,
        last_risk_events=last_risk_events,
        set_by_guard=by_guard,
    )


def lifted_guard_at(changes: list[Any], before: datetime | None) -> datetime | None:
    """When the last manual resume that lifted a state a guard had set took place (among the
    `trading_state` rows `(ts, state, source)` in time order stamped before `before`), or
    None. A pause and resume by hand alone moves nothing: it must not loosen the day's
    loss limit."""
    lifted, guarded = None, False
    for ts, state, source in changes:
        if before is not None and ts >= before:
            break
        if source == "guard":
            guarded = True
        elif state == TradingState.ACTIVE.value:
            if guarded:
                lifted = ts
            guarded = False
    return lifted


def previous_mids(history: pd.DataFrame, last: datetime | None) -> dict[str, float]:
    """The valid mids of the last committed interval: the last row of the history when it
    is that interval's (none when all its quotes were flagged, or nothing was committed)."""
    if last is None or history.empty or history.index[-1] != last:
        return {}
    row = history.to_numpy()[-1]
    known = ~np.isnan(row)
    return dict(zip(history.columns[known].astype(str).tolist(), row[known].tolist(), strict=True))


def load_paper_strategy(settings: Settings) -> Strategy:
    """The configured strategy, refused when the history a paper interval gives it is
    shorter than its first signal needs: such an account would never trade, silently (a
    backtest has the whole bars file and would trade)."""
    strategy = load_strategy(settings.strategy.name, settings.strategy.params)
    needed = int(getattr(strategy, "history_needed", 0))
    have = settings.market_data.history_bars
    if have < needed:
        raise UserError(
            f"config key market_data.history_bars: {have} bars of history, but strategy "
            f"{settings.strategy.name} needs {needed} before it can signal (set it to at "
            f"least {needed})"
        )
    return strategy


def previous_volumes(
    conn: Any, account_id: str, last: datetime | None, session: Session | None
) -> dict[str, float]:
    """The session volume each symbol's quote of the last committed interval reported, when
    that interval is in the same session (volumes restart at each open)."""
    if last is None or session is None or last < session.open:
        return {}
    rows = conn.execute(
        "SELECT symbol, volume FROM quotes WHERE account_id = ? AND as_of = ? AND volume >= 0",
        [account_id, last],
    ).fetchall()
    return dict(rows)


def previous_breaches(
    conn: Any, account_id: str, last: datetime | None, session: Session | None
) -> frozenset[tuple[str, str]]:
    """(reason, symbol) of each refusal the last committed interval recorded, when that
    interval is in the same session. A strategy that sends the same refused order every
    interval (a target over a limit) posted the same warning every minute, 390 a session;
    a refusal is news when it starts, and a new session's first ones are posted again."""
    if last is None or session is None or last < session.open:
        return frozenset()
    rows = conn.execute(
        "SELECT DISTINCT reason, coalesce(symbol, '') FROM risk_events"
        " WHERE account_id = ? AND ts = ? AND state_before = state_after",
        [account_id, last],
    ).fetchall()
    return frozenset((str(reason), str(symbol)) for reason, symbol in rows)


def fill_quotes(run: IntervalRun) -> pd.DataFrame:
    """The interval's quotes as the broker fills against them: `volume` is what traded
    during the interval, which `max_volume_share` and volume-impact slippage take a share
    of, not the session's volume so far that providers quote (late in the day that is
    hundreds of intervals' worth). It is the rise since the last committed interval of the
    session (the whole gap when intervals were missed); without one, the session volume
    averaged over the session's intervals so far. A volume that fell is unknown (NaN)."""
    assert run.quotes is not None
    cum = run.quotes["volume"].to_numpy(np.float64)
    before = run.quotes["symbol"].map(run.previous_volumes).to_numpy(np.float64)
    elapsed = 1
    if run.session is not None:
        step = run.settings.market_data.interval_seconds
        elapsed = int((run.as_of - run.session.open).total_seconds() // step) + 1
    traded = np.where(np.isnan(before), cum / elapsed, cum - before)
    return run.quotes.assign(volume=np.where(traded < 0, np.nan, traded))


def _load(
    conn: Any, settings: Settings, as_of: datetime, marks: AccountMarks
) -> tuple[Any, pd.DataFrame, dict[str, float]]:
    from warehouse.state import load_broker_state

    account = settings.account.id
    refuse_other_kind(account, marks.kind)
    refuse_before_latest(account, as_of, marks.latest)
    # nothing is committed after `as_of` (checked above): the latest interval is the last
    state = load_broker_state(conn, account, latest=marks.latest)
    history = load_history(conn, account, as_of, settings.market_data.history_bars)
    return state, history, previous_mids(history, marks.last_before)


def refuse_other_kind(account: str, kind: str) -> None:
    """A backtest's account holds its bars' equity and fills: an interval traded into it
    would start from a backtest's cash and mix the two histories."""
    if kind != "paper":
        raise UserError(
            f"account {account} is a {kind} account: trade on paper under another [account] id"
        )


def refuse_before_latest(account: str, as_of: datetime, latest: datetime | None) -> None:
    if latest is not None and latest > as_of:
        raise UserError(
            f"interval {as_of.isoformat()} is before account {account}'s last committed "
            f"interval {latest.isoformat()}: intervals are committed in time order"
        )


def check_warehouse(
    settings: Settings, as_of: datetime | None = None, *, writes: bool = True
) -> None:
    """What a run would refuse about its warehouse, refused before Prefect starts, so a
    typo is one line instead of a failed flow run with its traceback: a `--db` that is not
    a papertrade warehouse or (for `writes`) one it cannot write, a backtest's account, and
    an interval before the account's last that was never committed (a committed one is a
    no-op that returns its summary). The run checks again under its lock."""
    from warehouse.connection import check_writable, connect, refuse_foreign

    db, account = Path(settings.warehouse.path), settings.account.id
    if writes:
        check_writable(db)
    if not db.exists() and not db.is_symlink():
        return
    with connect(db, read_only=True, timeout=settings.warehouse.lock_timeout_seconds) as conn:
        if refuse_foreign(conn, db) == 0:
            return
        ((kind, latest, done),) = conn.execute(
            "SELECT (SELECT max(kind) FROM accounts WHERE account_id = $a), max(as_of),"
            " bool_or(as_of = $as_of) FROM intervals WHERE account_id = $a",
            {"a": account, "as_of": as_of},
        ).fetchall()
    refuse_other_kind(account, kind or "paper")
    if as_of is not None and not done:
        refuse_before_latest(account, as_of, latest)


def load_history(conn: Any, account_id: str, as_of: datetime, n_bars: int) -> pd.DataFrame:
    """Closes before `as_of` as a wide frame (rows UTC times named `ts`, columns symbols in
    order): the warm-up bars the account recorded, then the mids of its valid quotes (a quote
    wins over a bar at the same time), the last `n_bars` times.

    The small tables (intervals, warm-up bars) give the time window first, so the quotes
    table is read only inside it: its rows arrive in time order, and DuckDB skips the row
    groups outside the window, however long the account has been trading. Rows come back as
    Arrow and are placed into the matrix with NumPy: a pandas pivot of the long rows costs
    more than the queries."""
    bounds = {"account": account_id, "as_of": as_of, "n": n_bars}
    # Warm-up bars are recorded with an account's first interval and lie before it, so once
    # `n_bars` intervals precede `as_of` they are the window; until then the bars join in.
    ((lo, n_intervals),) = conn.execute(
        "SELECT min(as_of), count(*) FROM (SELECT as_of FROM intervals"
        " WHERE account_id = $account AND as_of < $as_of ORDER BY as_of DESC LIMIT $n)",
        bounds,
    ).fetchall()
    sources = [_QUOTE_MIDS]
    if n_intervals < n_bars:
        sources = [_BAR_CLOSES, _QUOTE_MIDS]
        ((lo,),) = conn.execute(
            """
            SELECT min(ts) FROM (
                SELECT ts FROM (
                    SELECT as_of AS ts FROM intervals
                    WHERE account_id = $account AND as_of < $as_of
                    UNION
                    SELECT DISTINCT timestamp FROM bars
                    WHERE account_id = $account AND timestamp < $as_of
                ) ORDER BY ts DESC LIMIT $n
            )
            """,
            bounds,
        ).fetchall()
    if lo is None:
        return pd.DataFrame(dtype="float64")
    window = {"account": account_id, "as_of": as_of, "lo": lo}
    return _wide([conn.sql(sql, params=window).to_arrow_table() for sql in sources])


_BAR_CLOSES = (
    "SELECT epoch_us(timestamp) AS ts, symbol, close AS price FROM bars "
    "WHERE account_id = $account AND timestamp >= $lo AND timestamp < $as_of"
)
_QUOTE_MIDS = (
    "SELECT epoch_us(as_of) AS ts, symbol, (bid + ask) / 2 AS price FROM quotes "
    "WHERE account_id = $account AND as_of >= $lo AND as_of < $as_of AND valid"
)


def _wide(parts: list[Any]) -> pd.DataFrame:
    """Long Arrow tables (ts in epoch microseconds, symbol, price), each with one row per
    (ts, symbol) at most, as one wide frame; a later part overwrites an earlier one."""
    import pyarrow as pa

    rows = pa.concat_tables(parts)
    if rows.num_rows == 0:
        return pd.DataFrame(dtype="float64")
    symbols = rows.column("symbol").combine_chunks().dictionary_encode()
    names = np.asarray(symbols.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names)
    column_of = np.empty_like(order)
    column_of[order] = np.arange(len(order))
    times, row_of = np.unique(rows.column("ts").to_numpy(), return_inverse=True)
    col_of = column_of[symbols.indices.to_numpy()]
    prices = rows.column("price").to_numpy()
    wide = np.full((len(times), len(names)), np.nan)
    start = 0
    for part in parts:  # one assignment per part: no index repeats within one
        end = start + part.num_rows
        wide[row_of[start:end], col_of[start:end]] = prices[start:end]
        start = end
    index = pd.DatetimeIndex(times.astype("datetime64[us]"), name="ts").tz_localize("UTC")
    return pd.DataFrame(wide, index=index, columns=pd.Index(names[order].tolist()))


def _warmup_bars(
    provider: MarketDataProvider,
    symbols: list[str],
    as_of: datetime,
    n: int,
    calendar: MarketCalendar,
) -> pd.DataFrame | None:
    """Bars for the `n` intervals before the account's first, so a strategy with a long
    lookback can act from the first interval. They are recorded with the commit, which is
    what lets a replay reproduce the session from the warehouse alone."""
    times: list[datetime] = []
    cursor: datetime | None = as_of
    while len(times) < n and cursor is not None:
        cursor = calendar.previous_interval(cursor)
        if cursor is not None:
            times.append(cursor)
    step = int(calendar.interval.total_seconds())
    if not times or step % 60:  # no provider has bars shorter than a minute
        return None
    start = min(times)
    timeframe = f"{step // 60}Min"
    try:
        bars = provider.bars(symbols, start, as_of - timedelta(microseconds=1), timeframe)
    except Exception as exc:  # warm-up is a convenience: the strategy can wait for history
        log.warning("warm-up bars unavailable: %s", exc)
        return None
    if bars is None or bars.empty:
        return None
    # Only the bars of the calendar's own intervals: the range from the first wanted interval
    # to `as_of` can span a night or a weekend, and providers answer for every minute of it
    # (the simulated market around the clock, Polygon with extended hours).
    bars = bars[bars["timestamp"].isin(pd.DatetimeIndex(times))]
    return bars.reset_index(drop=True)


def _closes(bars: pd.DataFrame | None) -> pd.DataFrame:
    if bars is None or bars.empty:
        return pd.DataFrame(dtype="float64")
    wide = bars.pivot_table(index="timestamp", columns="symbol", values="close", aggfunc="last")
    wide.index = pd.DatetimeIndex(wide.index).tz_convert("UTC")
    wide.columns.name = None
    return wide


def _merge_history(older: pd.DataFrame, newer: pd.DataFrame, n_bars: int | None) -> pd.DataFrame:
    if older.empty:
        merged = newer
    elif newer.empty:
        merged = older
    else:
        merged = pd.concat([older, newer])
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
    return merged if n_bars is None else merged.iloc[-n_bars:]


# ----------------------------------------------------------------------------- helpers


def _resting_fills(run: IntervalRun) -> None:
    """Fill resting orders against the new quotes before anything new is decided. A day order
    left open by a session that closed while nothing ran expires first, and the orders the
    trading state forbids (the kill switch) are canceled."""
    assert run.quotes is not None
    previous = run.last_committed
    crossed_session = run.session is not None and (previous is None or previous < run.session.open)
    if crossed_session:
        run.broker.expire_day_orders(run.as_of)
    run.broker.cancel_for_state(run.trading_state, run.as_of)
    run.broker_quotes = fill_quotes(run)
    run.broker.process_quotes(run.broker_quotes, run.as_of)


def _risk_rejected_orders(run: IntervalRun) -> list[Order]:
    """Intents RiskGuard refused, as orders in status rejected (`risk_rejected_order`)."""
    assert run.decision is not None
    by_cid = {i.client_order_id: i for i in run.intents}
    out = []
    for rejection in run.decision.rejections:
        intent = by_cid.get(rejection.client_order_id)
        if intent is None or intent.client_order_id is None:
            continue
        out.append(risk_rejected_order(run.account_id, intent, rejection.reason, run.as_of))
    return out


def _numbered(
    intents: list[OrderIntent], account_id: str, as_of: datetime, strategy: str | None = None
) -> list[OrderIntent]:
    """Give each intent its deterministic client order id, in the strategy's order."""
    out = []
    for seq, intent in enumerate(intents):
        name = strategy or intent.strategy or "strategy"
        cid = client_order_id(account_id, as_of, name, seq)
        out.append(replace(intent, client_order_id=cid, strategy=name))
    return out


_STATE_REFUSALS = {
    TradingState.HALTED: RejectReason.TRADING_HALTED,
    TradingState.REDUCING: RejectReason.TRADING_REDUCING,
}


def _alerts(run: IntervalRun, events: list[RiskEvent], changed: bool) -> list[AlertRecord]:
    slack = run.settings.slack
    alerts: list[AlertRecord] = []
    if run.fills:
        alerts.append(render_fills_alert(run.account_id, run.as_of, run.fills))
    breaches = _new_breaches(run, events)
    if breaches:
        alerts.append(render_risk_alerts(run.account_id, run.as_of, breaches))
    if changed and run.guard is not None:
        alerts.append(
            render_kill_switch_alert(
                run.account_id,
                run.as_of,
                run.guard.state.value,
                _state_reason(events),
                previous=run.trading_state.value,
            )
        )
    if run.gap:
        alerts.append(render_gap_alert(run.account_id, run.as_of, run.gap))
    return [a for a in alerts if is_wanted(a.kind, a.level, slack)]


def _new_breaches(run: IntervalRun, events: list[RiskEvent]) -> list[dict[str, Any]]:
    """The refusals worth a message; the others stay in `risk_events`. Left out: those that
    only restate a trading state, the one the interval began in, announced before (a halted
    account would otherwise post every refused intent of every interval), or the one a
    guard moved it to, announced by this interval's own kill-switch message (a guard's halt
    was followed by "Risk: 4 breaches: TRADING_HALTED"); and those the last interval of the
    session refused too, same reason and symbol (`previous_breaches`)."""
    states = [run.trading_state, *([run.guard.state] if run.guard else [])]
    quiet = {_STATE_REFUSALS.get(state) for state in states}
    return [
        e.as_row()
        for e in events
        if not e.changed_state
        and e.reason not in quiet
        and (e.reason, e.symbol or "") not in run.previous_breaches
    ]


def _state_reason(events: list[RiskEvent]) -> str:
    moved = [e for e in events if e.changed_state]
    return "; ".join(f"{e.rule}: {e.detail}" for e in moved) or "guard"


def positions_frame(broker: PaperBroker) -> pd.DataFrame:
    rows = [
        {
            "symbol": p.symbol,
            "quantity": p.quantity,
            "avg_cost": p.avg_cost,
            "market_price": p.market_price,
            "market_value": p.quantity * p.market_price,
            "unrealized_pnl": (p.market_price - p.avg_cost) * p.quantity,
        }
        for p in broker.positions()
    ]
    return pd.DataFrame(rows)
