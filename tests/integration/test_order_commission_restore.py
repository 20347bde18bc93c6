"""A partially filled order keeps its running commission through the warehouse, so the
per-order minimum is charged once however many processes fill it."""

from __future__ import annotations

from pathlib import Path

from paper_broker.broker import PaperBroker
from paper_broker.commission import PerShareCommission
from paper_broker.enums import OrderType, TimeInForce
from tests.factories import at, frictionless, make_intent, make_quotes
from warehouse.commit import IntervalCommit, commit_interval
from warehouse.connection import connect
from warehouse.state import load_broker_state


def test_second_partial_fill_after_a_restore_pays_no_second_minimum(tmp_path: Path) -> None:
    config = frictionless(commission=PerShareCommission(0.005, 1.0, 0.01))
    broker = PaperBroker("paper", 100_000.0, config, symbols=["AAPL"])
    intent = make_intent(
        "AAPL", quantity=100, order_type=OrderType.LIMIT, limit=101.0, tif=TimeInForce.GTC
    )
    broker.mark({"AAPL": 100.0})
    broker.submit([intent], at(0))
    first = broker.process_quotes(make_quotes(["AAPL"], size=40.0, ts=at(0)), at(0))
    changes = broker.drain_changes()
    db = tmp_path / "w.duckdb"
    commit_interval(
        db,
        IntervalCommit(
            "paper", at(0), None, broker.snapshot(), orders=changes.orders, fills=changes.fills
        ),
    )

    with connect(db) as conn:
        state = load_broker_state(conn, "paper")
    assert state is not None
    restored = PaperBroker.from_state(state, config, ["AAPL"])
    second = restored.process_quotes(make_quotes(["AAPL"], size=1_000.0, ts=at(1)), at(1))

    assert [f.quantity for f in first] == [40.0] and first[0].commission == 1.0
    assert state.open_orders[0].commission == 1.0
    # 100 shares x 0.005 = 0.50 < the 1.00 minimum already paid on the first fill
    assert [f.quantity for f in second] == [60.0] and second[0].commission == 0.0
