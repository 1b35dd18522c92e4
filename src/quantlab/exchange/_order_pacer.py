"""Client-side pacing of new orders under exchangeInfo's ORDERS limits (per account).

Binance answers an order over the limit with 429 / -1015 (a definitive non-placement, but a
wasted order and, repeated, a ban): counting here keeps a run under the limit instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping


class OrderPacer:
    """Keeps new orders under every ORDERS limit, counted in fixed windows like Binance's.

    A wait up to `max_wait_s` (a 10-second window filling up) is slept out; a longer one
    (the daily count) is refused with a reason, so a run does not hang for hours. The
    server's own `X-MBX-ORDER-COUNT-*` headers raise the local counts when they are higher.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_wait_s: float = 60.0,
    ):
        self.limits: dict[str, tuple[int, int]] = {}
        self._clock, self._sleep, self._max_wait_s = clock, sleep, max_wait_s
        self._counts: dict[str, tuple[int, int]] = {}  # suffix -> (window number, count)
        self._held_until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """The server said -1015 (too many new orders): send none for `seconds`."""
        with self._lock:
            self._held_until = max(self._held_until, self._clock() + seconds)

    def acquire(self) -> str | None:
        """Count one new order, after waiting for room; a reason instead when it would wait
        longer than `max_wait_s`."""
        with self._lock:
            while True:
                now = self._clock()
                wait = max(self._held_until - now, 0.0)
                for suffix, (window_s, limit) in self.limits.items():
                    window, count = self._count(suffix, window_s, now)
                    if count >= limit:
                        wait = max(wait, (window + 1) * window_s - now)
                if wait <= 0:
                    break
                if wait > self._max_wait_s:
                    return (
                        f"the order rate limit leaves no room for {wait:.0f} s "
                        f"(limits {self._describe()}); run again after that"
                    )
                self._sleep(wait)
            for suffix, (window_s, _) in self.limits.items():
                window, count = self._count(suffix, window_s, now)
                self._counts[suffix] = (window, count + 1)
            return None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the server's counts (`X-MBX-ORDER-COUNT-10S`) when higher than ours."""
        with self._lock:
            now = self._clock()
            for suffix, (window_s, _) in self.limits.items():
                value = headers.get(f"X-MBX-ORDER-COUNT-{suffix}")
                if value is None or not value.isdigit():
                    continue
                window, count = self._count(suffix, window_s, now)
                self._counts[suffix] = (window, max(count, int(value)))

    def _count(self, suffix: str, window_s: int, now: float) -> tuple[int, int]:
        window = int(now // window_s)
        seen, count = self._counts.get(suffix, (window, 0))
        return window, count if seen == window else 0

    def _describe(self) -> str:
        return ", ".join(f"{limit} per {s} s" for s, limit in self.limits.values())
