"""The words every layer shares: the row key, markets, kline intervals and bars per year.

One copy, imported by config models, the exchange client, stages and the CLI alike; it
imports nothing from quantlab, so anything may import it.
"""

from __future__ import annotations

from typing import Literal, get_args

# The key of every per-bar research frame: features, labels, predictions, targets.
KEY = ("symbol", "open_time")

Market = Literal["spot", "futures_um"]
MARKETS: tuple[str, ...] = get_args(Market)

Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]
INTERVAL_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
INTERVALS: tuple[str, ...] = get_args(Interval)
_YEAR_MS = 365 * 86_400_000


def last_closed_open_ms(at_ms: int, step_ms: int) -> int:
    """The open time (ms) of the newest candle of `step_ms` closed at `at_ms`: a candle opened
    at o closes at o + step, so at 11:00 the newest closed 1h candle is the 10:00 one. The one
    rule the gate's staleness check, `quantlab health` and the monitoring DAG judge by."""
    return at_ms // step_ms * step_ms - step_ms


def bars_per_year(interval: str) -> int:
    """Bars of `interval` in a 365-day year (crypto trades every day): 8760 for 1h."""
    return _YEAR_MS // INTERVAL_MS[interval]


# The six market regimes (quantlab.features.regimes), in code order: a regime's code is its
# index here, and every regime model answers with its probabilities in this order.
REGIMES = ("Choppy_High_Vol", "Strong_Trend", "Volatility_Spike", "Weak_Trend", "Range", "Squeeze")
