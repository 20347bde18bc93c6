"""The end-of-day quality suites, run with Great Expectations on pandas frames.

Suites and what "failure" means:

- quotes: flagged quotes (`valid = false`) stay in the table on purpose, so the price rules
  apply to rows marked valid: a failure is a quote that breaks a rule and was still treated
  as valid. Every row must have its keys, a unique key, a symbol of the universe and a
  `valid` flag; every flagged row a `flag_reason`. Valid rows: bid and ask present and
  positive, ask >= bid, spread <= `max_spread_bps` of the mid, fresh
  (`quote_ts >= as_of - staleness_seconds`), and not from a later interval
  (`quote_ts < as_of + interval_seconds`, as the interval's validation flags `future`: a
  quote stamped later is look-ahead), and its mid within `max_jump_pct` of the symbol's
  valid mid of the interval before (`derived.quote_checks_frame`; validation flags `jump`).
- orders: known status, side and type; positive quantity; filled_quantity <= quantity; a
  limit price on (non-rejected) limit and stop-limit orders, a stop price on stop and
  stop-limit orders; unique order ids.
- fills: fill ids unique over the account's history; for the session's fills a positive
  quantity, a known side, commission >= 0, a valid quote of the same interval (less than
  `interval_seconds` before the fill, not an older one), and a price inside that quote's
  bid/ask widened by the slippage limit and one tick (fills round to the tick against the
  trader). A fill without its quote fails `quote_exists` only: it has no band to check.
- intervals: every expected interval of the session recorded (a gap fails), none off grid.
- ledger (cumulative from inception, to `tolerance`, see `derived.allowed_error`): cash =
  initial cash + fill cash flows; each position = the sum of its signed fills; each equity
  snapshot = cash + positions value, and the final positions value = its positions' market
  value.

GX is imported inside `run_quality_checks` only: it takes seconds to import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import pandas as pd

from paper_broker.enums import OrderStatus, OrderType, Side
from papertrade.dq import derived
from papertrade.dq.frames import SessionFrames
from papertrade.dq.results import MAX_SAMPLE, DQResult, json_ready

# a pair rule skips a row where either value is missing (GX's default skips only both)
_EITHER_MISSING = "either_value_is_missing"


@dataclass(frozen=True, slots=True)
class _Dataset:
    """One frame validated by one GX suite; `keys` identify an offending row in samples."""

    suite: str
    name: str
    frame: pd.DataFrame
    keys: list[str]
    checks: list[tuple[str, Any]]


def run_quality_checks(
    frames: SessionFrames,
    *,
    universe: Sequence[str],
    expected_intervals: Sequence[datetime],
    initial_cash: float,
    max_spread_bps: float,
    staleness_seconds: float,
    slippage_bps: float,
    tolerance: float = 1e-6,
    tick_size: float = 0.0,
    interval_seconds: float | None = None,
    max_jump_pct: float | None = None,
) -> list[DQResult]:
    """Run every suite over one session; one `DQResult` per expectation, in a stable order.

    A rule broken by the data is a failed result, never an exception; an expectation GX could
    not evaluate (e.g. a missing column) is a failed result whose observed value says why.
    """
    gx = _import_gx()
    context = _ephemeral_context(gx)
    source = context.data_sources.add_pandas("papertrade")
    datasets = _datasets(
        gx,
        frames,
        universe=list(universe),
        expected_intervals=expected_intervals,
        initial_cash=initial_cash,
        max_spread_bps=max_spread_bps,
        staleness_seconds=staleness_seconds,
        slippage_bps=slippage_bps,
        tolerance=tolerance,
        tick_size=tick_size,
        interval_seconds=interval_seconds,
        max_jump_pct=max_jump_pct,
    )
    results: list[DQResult] = []
    for dataset in datasets:
        results.extend(_validate(gx, source, dataset))
    return results


def _import_gx() -> ModuleType:
    # Analytics off before the import: GX reads the variable when it loads its config.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def _ephemeral_context(gx: ModuleType) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _validate(gx: ModuleType, source: Any, dataset: _Dataset) -> list[DQResult]:
    asset = source.add_dataframe_asset(dataset.name)
    batch = asset.add_batch_definition_whole_dataframe("session").get_batch(
        batch_parameters={"dataframe": dataset.frame}
    )
    suite = gx.ExpectationSuite(name=dataset.name)
    for name, expectation in dataset.checks:
        expectation.meta = {"name": name}
        suite.add_expectation(expectation)
    outcome = batch.validate(
        suite,
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": dataset.keys,
            "partial_unexpected_count": MAX_SAMPLE,
        },
    )
    by_name = {r.expectation_config.meta["name"]: r for r in outcome.results}
    return [_result(dataset.suite, name, by_name[name]) for name, _ in dataset.checks]


def _result(suite: str, name: str, validation: Any) -> DQResult:
    info = validation.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message", "")).splitlines()[0:1]
        return DQResult(suite, name, False, f"error: {''.join(message)}", 0, [])
    result = validation.result or {}
    unexpected = int(result.get("unexpected_count") or 0)
    if "observed_value" in result:
        observed = str(json_ready(result["observed_value"]))
    else:
        # GX leaves out the rows whose checked value is missing (a fill with no quote has no
        # price band): they are not counted as checked
        checked = int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
        observed = f"{unexpected} of {checked} rows unexpected"
    sample = [json_ready(row) for row in result.get("partial_unexpected_index_list") or []]
    return DQResult(
        suite=suite,
        expectation=name,
        success=bool(validation.success),
        observed_value=observed,
        unexpected_count=unexpected,
        sample=sample[:MAX_SAMPLE],
    )


def _datasets(
    gx: ModuleType,
    frames: SessionFrames,
    *,
    universe: list[str],
    expected_intervals: Sequence[datetime],
    initial_cash: float,
    max_spread_bps: float,
    staleness_seconds: float,
    slippage_bps: float,
    tolerance: float,
    tick_size: float,
    interval_seconds: float | None,
    max_jump_pct: float | None,
) -> list[_Dataset]:
    from great_expectations.expectations.row_conditions import Column

    gxe = gx.expectations
    # Condition objects overload ==, so the comparison with True builds a filter.
    is_valid = Column("valid") == True  # noqa: E712
    is_flagged = Column("valid") == False  # noqa: E712

    def not_null(column: str, **kw: Any) -> Any:
        return gxe.ExpectColumnValuesToNotBeNull(column=column, **kw)

    def at_least(a: str, b: str, **kw: Any) -> Any:
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a, column_B=b, or_equal=True, **kw
        )

    def in_set(column: str, values: Sequence[Any], **kw: Any) -> Any:
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values), **kw)

    def positive(column: str, **kw: Any) -> Any:
        return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, strict_min=True, **kw)

    def within(column: str, limit: float, **kw: Any) -> Any:
        return gxe.ExpectColumnValuesToBeBetween(column=column, max_value=limit, **kw)

    # the interval's validation flags a quote stamped an interval or more after its as_of
    not_ahead = (
        []
        if interval_seconds is None
        else [
            (
                "valid_not_ahead",
                gxe.ExpectColumnValuesToBeBetween(
                    column="age_seconds",
                    min_value=-interval_seconds,
                    strict_min=True,
                    row_condition=is_valid,
                ),
            )
        ]
    )
    # and a mid that moved too far since the interval before (`jump`)
    no_jump = (
        []
        if max_jump_pct is None
        else [("valid_jump_within_limit", within("jump", max_jump_pct, row_condition=is_valid))]
    )
    quotes = _Dataset(
        "quotes",
        "quotes",
        derived.quote_checks_frame(frames.quotes),
        ["as_of", "symbol", "valid"],
        [
            ("account_id_not_null", not_null("account_id")),
            ("as_of_not_null", not_null("as_of")),
            ("symbol_not_null", not_null("symbol")),
            (
                "key_unique",
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["account_id", "as_of", "symbol"]),
            ),
            ("symbol_in_universe", in_set("symbol", universe)),
            ("valid_not_null", not_null("valid")),
            ("flagged_have_reason", not_null("flag_reason", row_condition=is_flagged)),
            ("valid_bid_not_null", not_null("bid", row_condition=is_valid)),
            ("valid_ask_not_null", not_null("ask", row_condition=is_valid)),
            ("valid_bid_positive", positive("bid", row_condition=is_valid)),
            ("valid_ask_positive", positive("ask", row_condition=is_valid)),
            ("valid_ask_ge_bid", at_least("ask", "bid", row_condition=is_valid)),
            (
                "valid_spread_within_limit",
                within("spread_bps", max_spread_bps, row_condition=is_valid),
            ),
            ("valid_quote_ts_not_null", not_null("quote_ts", row_condition=is_valid)),
            ("valid_fresh", within("age_seconds", staleness_seconds, row_condition=is_valid)),
            *not_ahead,
            *no_jump,
        ],
    )
    orders = _Dataset(
        "orders",
        "orders",
        derived.order_checks_frame(frames.orders),
        ["order_id", "symbol", "order_type", "status"],
        [
            ("order_id_unique", gxe.ExpectColumnValuesToBeUnique(column="order_id")),
            ("status_known", in_set("status", [s.value for s in OrderStatus])),
            ("side_known", in_set("side", [s.value for s in Side])),
            ("order_type_known", in_set("order_type", [t.value for t in OrderType])),
            ("quantity_positive", positive("quantity")),
            ("filled_le_quantity", at_least("quantity", "filled_quantity")),
            (
                "limit_price_for_limit_orders",
                not_null("limit_price", row_condition=Column("needs_limit_price") == True),  # noqa: E712
            ),
            (
                "stop_price_for_stop_orders",
                not_null("stop_price", row_condition=Column("needs_stop_price") == True),  # noqa: E712
            ),
        ],
    )
    fill_ids = _Dataset(
        "fills",
        "fill_history",
        frames.fills,
        ["fill_id", "ts", "symbol"],
        [("fill_id_unique", gxe.ExpectColumnValuesToBeUnique(column="fill_id"))],
    )
    session_fills = _Dataset(
        "fills",
        "session_fills",
        derived.fill_band_frame(
            frames.session_fills,
            frames.quotes,
            slippage_bps=slippage_bps,
            tick_size=tick_size,
            interval=None if interval_seconds is None else timedelta(seconds=interval_seconds),
        ),
        ["fill_id", "ts", "symbol", "side"],
        [
            ("quantity_positive", positive("quantity")),
            ("side_known", in_set("side", [s.value for s in Side])),
            (
                "commission_non_negative",
                gxe.ExpectColumnValuesToBeBetween(column="commission", min_value=0),
            ),
            ("quote_exists", not_null("quote_as_of")),
            ("quote_valid", in_set("quote_valid", [True])),
            # a fill without a quote has no band: `quote_exists` reports it, once
            ("price_ge_bid_band", at_least("price", "band_low", ignore_row_if=_EITHER_MISSING)),
            ("price_le_ask_band", at_least("band_high", "price", ignore_row_if=_EITHER_MISSING)),
        ],
    )
    intervals = _Dataset(
        "intervals",
        "intervals",
        derived.interval_coverage_frame(frames.intervals, expected_intervals),
        ["as_of"],
        [
            ("no_gaps", in_set("present", [True])),
            ("on_session_grid", in_set("expected", [True])),
        ],
    )
    ledger_keys = ["item", "expected", "actual", "difference"]

    def reconciles() -> Any:
        return at_least("allowed", "abs_difference")

    ledger = [
        _Dataset(
            "ledger",
            "ledger_cash",
            derived.cash_reconciliation_frame(
                frames.fills, frames.final_equity, initial_cash=initial_cash, tolerance=tolerance
            ),
            ledger_keys,
            [("cash_reconciles", reconciles())],
        ),
        _Dataset(
            "ledger",
            "ledger_positions",
            derived.position_reconciliation_frame(
                frames.fills, frames.positions, tolerance=tolerance
            ),
            ledger_keys,
            [("positions_reconcile", reconciles())],
        ),
        _Dataset(
            "ledger",
            "ledger_equity",
            derived.equity_identity_frame(frames.equity, frames.positions, tolerance=tolerance),
            ledger_keys,
            [("equity_identity", reconciles())],
        ),
    ]
    return [quotes, orders, fill_ids, session_fills, intervals, *ledger]
