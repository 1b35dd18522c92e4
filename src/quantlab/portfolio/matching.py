"""How an order fills against a bar: the one matching rule of the paper venue and the replay
exchange, on the backtest's cost model (`portfolio.costs`) and tick rounding (`portfolio.venue`).

- MARKET: the whole quantity at the bar's open moved against the taker by `slip_frac`
  (half spread + impact, `portfolio.costs.slippage_fraction`), on the tick grid against the
  taker: exactly the backtest's fill price.
- LIMIT: fills only when the bar trades through the limit (a buy needs low < limit, a sell
  high > limit; touching is not enough, since the queue ahead is unknown), at the limit or at
  the open where the open is already better, and at most `max_participation` of the bar's
  volume, so a large order fills over several bars.
- Fees are charged as Binance charges them: in the asset received (base on a buy, quote on a
  sell), at the taker rate for a market order or a limit that fills on its first bar, maker
  otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantlab.portfolio.types import Side
from quantlab.portfolio.venue import floor_to_step, round_price


@dataclass(frozen=True)
class BarPrices:
    """One bar of the traded symbol: what matching may look at."""

    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float  # base units


def sign(side: Side) -> int:
    return 1 if side is Side.BUY else -1


def fee_for(
    side: Side, qty: float, price: float, rate: float, base: str, quote: str
) -> tuple[float, str]:
    """(fee, fee asset): Binance takes its fee from what the order receives."""
    if side is Side.BUY:
        return qty * rate, base
    return qty * price * rate, quote


def market_price(side: Side, bar_open: float, slip_frac: float, tick: float) -> float:
    """A market order's price at `bar_open`, slipped against the taker and on the tick grid."""
    s = sign(side)
    return float(round_price(bar_open * (1.0 + s * slip_frac), tick, s))


def limit_fill(
    side: Side,
    limit: float,
    remaining: float,
    bar: BarPrices,
    max_participation: float,
    step: float,
) -> tuple[float, float]:
    """(qty, price) a resting limit order fills in `bar`; (0, 0) when the bar does not trade
    through it. The quantity is capped at `max_participation` of the bar's volume and floored to
    `step`."""
    if side is Side.BUY:
        if not bar.low < limit:
            return 0.0, 0.0
        price = min(bar.open, limit)
    else:
        if not bar.high > limit:
            return 0.0, 0.0
        price = max(bar.open, limit)
    qty = min(remaining, max_participation * bar.volume)
    qty = float(floor_to_step(qty, step)) if qty < remaining else remaining
    return (qty, price) if qty > 0 else (0.0, 0.0)
