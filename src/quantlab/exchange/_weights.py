"""Binance request weights, and a tracker that keeps a client under the per-minute budget."""

from __future__ import annotations

import math
from collections.abc import Callable

SPOT_KLINES_MAX_LIMIT = 1000
FUTURES_KLINES_MAX_LIMIT = 1500
TIME_WEIGHT = 1

# (largest limit in the tier, weight) of GET /fapi/v1/klines: 1 below 100, 2 below 500,
# 5 up to 1000, 10 above.
FUTURES_KLINES_TIERS = ((99, 1), (499, 2), (1000, 5), (1500, 10))


def klines_weight(market: str, limit: int) -> int:
    """Weight Binance charges for one klines request with this `limit`."""
    if market == "spot":
        return 2
    for top, weight in FUTURES_KLINES_TIERS:
        if limit <= top:
            return weight
    return FUTURES_KLINES_TIERS[-1][1]


def choose_klines_limit(market: str, rows_wanted: int) -> int:
    """The `limit` that fetches `rows_wanted` rows for the least total weight.

    Spot costs 2 at any limit, so it always asks for the maximum. Futures weight grows with
    the limit, so a long range is cheaper in pages of 499 than of 1500; ties go to fewer
    requests.
    """
    if market == "spot":
        return SPOT_KLINES_MAX_LIMIT
    rows_wanted = max(rows_wanted, 1)

    def cost(tier: tuple[int, int]) -> tuple[int, int]:
        pages = math.ceil(rows_wanted / tier[0])
        return pages * tier[1], pages

    top, _ = min(FUTURES_KLINES_TIERS, key=cost)
    return min(top, rows_wanted)


class WeightTracker:
    """Mirror of the server's `X-MBX-USED-WEIGHT-1M` counter.

    Binance counts weight per wall-clock minute. Before a request the client asks
    `reserve(weight)`; if the request would push the minute past the limit it sleeps until
    the next minute starts, instead of earning a 429 (and, repeated, a 418 ban).
    """

    def __init__(
        self, limit_per_min: int, sleep: Callable[[float], None], clock: Callable[[], float]
    ):
        self.limit = limit_per_min
        self.used = 0
        self._sleep = sleep
        self._clock = clock
        self._minute = int(clock() // 60)

    def reserve(self, weight: int) -> None:
        now = self._clock()
        if int(now // 60) != self._minute:
            self._minute, self.used = int(now // 60), 0
        if self.used + weight > self.limit:
            self._sleep((self._minute + 1) * 60 - now)
            self._minute, self.used = self._minute + 1, 0
        # Counted locally too, so a response without the header (a reset) still counts.
        self.used += weight

    def observe(self, used_header: str | None) -> None:
        """Take the server's own count from a response, which is the truth."""
        if used_header is None:
            return
        try:
            used = int(used_header)
        except ValueError:
            return
        self._minute, self.used = int(self._clock() // 60), used
