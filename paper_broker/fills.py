"""Fill rules: which open orders execute against a quote or a bar, how much, and at what
price. Pure functions over aligned arrays (one element per open order), so the broker
decides a whole cross-section in a handful of numpy operations.

Conventions: `sign` is +1 for buys and -1 for sells; order types are coded as in
`TYPE_CODES`; missing limit/stop prices are NaN. Prices are never rounded in the trader's
favour: buys round up to the tick, sells down, and never past the limit.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt

from paper_broker.enums import OrderType

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MARKET, LIMIT, STOP, STOP_LIMIT = 0, 1, 2, 3
TYPE_CODES: dict[OrderType, int] = {
    OrderType.MARKET: MARKET,
    OrderType.LIMIT: LIMIT,
    OrderType.STOP: STOP,
    OrderType.STOP_LIMIT: STOP_LIMIT,
}

# Float fuzz allowed when snapping to the tick: 100.00 / 0.01 is 10000.000000000002.
_TICK_EPS = 1e-7


class FillModel(StrEnum):
    """How orders fill on bars (backtests).

    NEXT_OPEN: an order submitted before the bar's timestamp fills on this bar, market
        orders at its open; limits and stops use open/high/low (a gap through the limit
        fills at the open). Orders submitted at the bar's own timestamp wait for the next.
    CLOSE: every open order, including ones submitted at `now`, is tested against the
        bar's close only (submit first, then process the bar).
    """

    NEXT_OPEN = "next_open"
    CLOSE = "close"


def round_to_tick(price: FloatArray, sign: FloatArray, tick: float) -> FloatArray:
    """Snap prices to the tick against the trader: buys (sign > 0) up, sells down."""
    steps = price / tick
    snapped = np.where(sign > 0, np.ceil(steps - _TICK_EPS), np.floor(steps + _TICK_EPS))
    # round() removes the binary noise of steps x tick (e.g. 10001 x 0.01 = 100.01000000000001)
    return np.round(snapped * tick, 10)


def cap_at_limit(price: FloatArray, sign: FloatArray, limit: FloatArray) -> FloatArray:
    """Never past the limit: buys pay at most it, sells receive at least it (NaN: no limit)."""
    capped = np.where(sign > 0, np.fmin(price, limit), np.fmax(price, limit))
    return np.where(np.isnan(limit), price, capped)


def allocate(key: IntArray, want: FloatArray, available: FloatArray) -> FloatArray:
    """Share `available` liquidity among orders with the same `key`, first come first served.

    Orders are in priority (creation) order; `available` is the same for every order of a
    key. Each order gets min(want, what earlier orders of its key left), never below 0."""
    n = key.shape[0]
    if n == 0:
        return want.copy()
    order = np.argsort(key, kind="stable")
    k = key[order]
    w = want[order]
    before = np.cumsum(w) - w
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(k[1:], k[:-1], out=starts[1:])
    group = np.cumsum(starts) - 1
    used = before - before[starts][group]
    taken = np.clip(available[order] - used, 0.0, w)
    out = np.empty(n, dtype=np.float64)
    out[order] = taken
    return out


def volume_cap(volume: FloatArray, share: float | None) -> FloatArray:
    """Most shares a fill may take from `volume`, in whole shares (a share of 1,000 shares'
    volume is not 13.2 shares); infinite where no cap applies."""
    if share is None:
        return np.full(volume.shape, np.inf)
    known = np.isfinite(volume) & (volume > 0)
    # + 1e-9: 0.29 x 100 is 28.999999999999996 in floats, and 29 shares, not 28
    return np.where(known, np.floor(volume * share + 1e-9), np.inf)


def stops_triggered(sign: FloatArray, stop: FloatArray, trade: FloatArray) -> BoolArray:
    """A buy stop triggers when the market trades at or above the stop, a sell stop at or
    below it. NaN trade prices or stops never trigger."""
    with np.errstate(invalid="ignore"):
        return np.where(sign > 0, trade >= stop, trade <= stop)


def quote_marketable(
    sign: FloatArray, code: IntArray, triggered: BoolArray, limit: FloatArray,
    bid: FloatArray, ask: FloatArray,
) -> tuple[BoolArray, FloatArray]:  # fmt: skip
    """Which orders can execute against the quote, and the touched price (ask for buys,
    bid for sells). Untriggered stops never execute; a triggered stop is a market order and
    a triggered stop-limit a limit order."""
    touch = np.where(sign > 0, ask, bid)
    market_like = (code == MARKET) | ((code == STOP) & triggered)
    limit_like = (code == LIMIT) | ((code == STOP_LIMIT) & triggered)
    with np.errstate(invalid="ignore"):
        within = np.where(sign > 0, touch <= limit, touch >= limit)
    ok = (market_like | (limit_like & within)) & np.isfinite(touch)
    return ok, touch


def bar_prices(
    sign: FloatArray, code: IntArray, triggered: BoolArray, limit: FloatArray,
    stop: FloatArray, open_: FloatArray, high: FloatArray, low: FloatArray,
) -> tuple[BoolArray, FloatArray, BoolArray]:  # fmt: skip
    """Execution on one bar, honest about the bar's path: returns (fills, price, triggers).

    Market orders fill at the open. A buy limit fills at the open if the open is at or below
    the limit (a gap through it), else at the limit if the low reached it. A buy stop
    triggers at the open if the open is at or above the stop, else at the stop if the high
    reached it, and fills there. A stop-limit that triggers at the open (a gap through the
    stop) is a limit order from the bar's first price on, so it fills like one on the rest
    of the bar: at the open when that is within the limit, else at the limit if the low
    reached it. One that triggers intrabar fills at the stop when the stop is within the
    limit; otherwise it rests as a limit order, because the bar does not tell whether the
    price came back to the limit after the stop or only before it. Sells mirror this: the
    arithmetic runs on negated prices, so a sell's "high" is -low and its "low" is -high.
    """
    buy = sign > 0
    o = sign * open_
    h = np.where(buy, high, -low)
    lo = np.where(buy, low, -high)
    lim = sign * limit
    stp = sign * stop
    with np.errstate(invalid="ignore"):
        # limit side: gap through -> open, touched intrabar -> limit
        lim_fills = (o <= lim) | (lo <= lim)
        lim_price = np.where(o <= lim, o, lim)
        # stop side: trigger at open on a gap, else at the stop if the high got there
        gap_trigger = o >= stp
        stop_hit = gap_trigger | (h >= stp)
        trig_price = np.where(gap_trigger, o, stp)
        # after a gap trigger the whole bar follows it; intrabar only the stop price is sure
        trig_fills = np.where(gap_trigger, lim_fills, stp <= lim)
        trig_fill_price = np.where(gap_trigger, lim_price, stp)
    is_market = code == MARKET
    is_limit = code == LIMIT
    is_stop = code == STOP
    is_stop_limit = code == STOP_LIMIT
    new_trigger = (is_stop | is_stop_limit) & ~triggered & stop_hit
    fills = (
        is_market
        | (is_limit & lim_fills)
        | (is_stop & (triggered | new_trigger))
        | (is_stop_limit & triggered & lim_fills)
        | (is_stop_limit & new_trigger & trig_fills)
    )
    price = np.where(
        is_market | (is_stop & triggered),
        o,
        np.where(
            is_limit | (is_stop_limit & triggered),
            lim_price,
            np.where(is_stop_limit, trig_fill_price, trig_price),
        ),
    )
    fills &= np.isfinite(price)
    return fills, sign * price, new_trigger
