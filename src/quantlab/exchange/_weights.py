"""Binance request weights, and a tracker that keeps a client under the per-minute budget."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

# REQUEST_WEIGHT per minute and IP when exchangeInfo has not been read: spot has allowed
# 6000 since 2023-08-25, USD-M futures 2400 (its exchangeInfo rateLimits).
REQUEST_WEIGHT_PER_MIN = {"spot": 6000, "futures_um": 2400}
SPOT_KLINES_MAX_LIMIT = 1000
FUTURES_KLINES_MAX_LIMIT = 1500
TIME_WEIGHT = 1
# GET /api/v3/exchangeInfo costs 20, GET /fapi/v1/exchangeInfo 1.
EXCHANGE_INFO_WEIGHT = {"spot": 20, "futures_um": 1}
# GET /fapi/v1/fundingRate costs no request weight; it has its own limit of 500 requests per
# 5 minutes per IP, shared with /fapi/v1/fundingInfo.
FUNDING_RATE_WEIGHT = 0
FUNDING_RATE_MAX_LIMIT = 1000
FUNDING_RATE_REQUESTS = (500, 300)  # (requests, per seconds)

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
    """Mirror of the server's `X-MBX-USED-WEIGHT-1M` counter, shared by every thread of a client.

    Binance counts weight per wall-clock window (a minute). Before a request a thread calls
    `reserve(weight)`; if the request would push the window past the limit, it sleeps until
    the next window starts instead of earning a 429 (and, repeated, a 418 ban). Waiting
    threads queue behind the one asleep, so they wake one by one and re-check the budget.

    A request sent but not yet answered may be counted by the server in the next window, so a
    new window starts with the weight still in flight rather than at zero.

    A 429 pauses every thread: `pause` sleeps out the server's Retry-After holding the gate
    that every `reserve` passes. A clock stepped backwards moves the window back with it
    (its count kept), so a wait never exceeds one window.
    """

    def __init__(
        self,
        limit_per_min: int,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        window_s: int = 60,
    ):
        self.limit = limit_per_min
        self.used = 0
        self.in_flight = 0
        self._sleep = sleep
        self._clock = clock
        self._window_s = window_s
        self._window = int(clock() // window_s)
        self._pauses = 0  # how many 429 pauses were slept out
        self._state = threading.Lock()  # held briefly, for the counters
        self._gate = threading.Lock()  # held by the thread waiting for the next window

    def set_limit(self, limit: int) -> None:
        with self._state:
            self.limit = limit

    def reserve(self, weight: int) -> int:
        """Wait until `weight` fits in this window, count it and return the window's number."""
        with self._gate:
            while True:
                with self._state:
                    now = self._clock()
                    self._roll(now)
                    # A weight above the whole limit goes out alone in a fresh window.
                    if self.used + weight <= self.limit or self.used == 0:
                        # Counted locally too, so a response without the header still counts.
                        self.used += weight
                        self.in_flight += weight
                        return self._window
                    next_window = (self._window + 1) * self._window_s
                self._sleep(next_window - now)
                with self._state:  # that window is over, even if the clock says a hair less
                    self._roll(max(self._clock(), next_window))

    @property
    def pauses(self) -> int:
        """Read before a request; hand to `pause` if it earns a 429."""
        with self._state:
            return self._pauses

    def pause(self, seconds: float, pauses_before: int) -> None:
        """Hold every thread's next `reserve` for `seconds`: the server said 429.

        `pauses_before` is `pauses` as read before the request that got the 429: if another
        thread has paused since, that pause already covered this request's 429, and this
        thread only queues behind it instead of adding a second wait.
        """
        with self._gate:
            with self._state:
                if self._pauses != pauses_before:
                    return
            self._sleep(seconds)
            with self._state:
                self._pauses += 1
                self._roll(self._clock())

    def release(self, weight: int) -> None:
        """The request reserved with `weight` was answered, or failed."""
        with self._state:
            self.in_flight = max(self.in_flight - weight, 0)

    def observe(self, used_header: str | None, window: int | None = None) -> None:
        """Take the server's own count from a response to a request reserved in `window`.

        The server's count is the truth when it is higher (other processes on this IP). A
        response to a request from an earlier window may carry that window's count, so it is
        ignored: the new window already started with that request in flight.
        """
        if used_header is None:
            return
        try:
            used = int(used_header)
        except ValueError:
            return
        with self._state:
            self._roll(self._clock())
            if window is None or window == self._window:
                self.used = max(self.used, used)

    def _roll(self, now: float) -> None:
        window = int(now // self._window_s)
        if window > self._window:
            self._window, self.used = window, self.in_flight
        elif window < self._window:  # the clock stepped back: wait on its windows, not ours
            self._window = window
