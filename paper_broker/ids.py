"""Typed ids, and the deterministic client order id that makes retries idempotent."""

from __future__ import annotations

from datetime import datetime
from typing import NewType

AccountId = NewType("AccountId", str)
OrderId = NewType("OrderId", str)
ClientOrderId = NewType("ClientOrderId", str)
FillId = NewType("FillId", str)
Symbol = NewType("Symbol", str)

DEFAULT_ACCOUNT = AccountId("paper")


def client_order_id(
    account_id: str, as_of: datetime, strategy: str, sequence: int
) -> ClientOrderId:
    """Same (account, as_of, strategy, sequence) -> same id, so a retried step resubmits the
    same orders and both the broker and the warehouse dedupe them."""
    stamp = as_of.strftime("%Y%m%dT%H%M%S")
    return ClientOrderId(f"{account_id}-{stamp}-{strategy}-{sequence:05d}")
