"""The recorded spot candles the replay exchange prices orders with: per symbol, the finest
interval its root holds (1m before 1h), from the same bulk files its klines endpoint serves.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from quantlab.exchange._vision_store import KlineStore, _Lazy
from quantlab.portfolio.matching import BarPrices
from quantlab.vocab import INTERVAL_MS

_BASE = "data/spot"


class Candles:
    """The recorded spot candles of each symbol at its finest stored interval."""

    def __init__(self, store: KlineStore):
        self.store = store
        self._intervals = _Lazy()

    def interval(self, symbol: str) -> tuple[str, int] | None:
        return self._intervals.get(symbol, lambda: self._finest(symbol))

    def _finest(self, symbol: str) -> tuple[str, int] | None:
        root = Path(self.store.root) / _BASE
        names = {p.name for p in root.glob(f"*/klines/{symbol}/*") if p.name in INTERVAL_MS}
        if not names:
            return None
        best = min(names, key=INTERVAL_MS.__getitem__)
        return best, INTERVAL_MS[best]

    def series(self, symbol: str) -> tuple[int, list[int], list[str]]:
        found = self.interval(symbol)
        if found is None:
            return 0, [], []
        opens, rows = self.store.rows(_BASE, symbol, found[0])
        return found[1], opens, rows

    def price_now(self, symbol: str, now_ms: int) -> tuple[Decimal, int] | None:
        """(price at `now_ms`, open time of the first candle a resting order may still match)."""
        step, opens, rows = self.series(symbol)
        i = bisect.bisect_right(opens, now_ms) - 1
        if i < 0:
            return None
        row = json.loads(rows[i])
        if now_ms < opens[i] + step:
            return Decimal(row[1]), opens[i]
        return Decimal(row[4]), opens[i] + step

    def closed_bars(self, symbol: str, from_ms: int, now_ms: int) -> Iterable[BarPrices]:
        step, opens, rows = self.series(symbol)
        for i in range(bisect.bisect_left(opens, from_ms), len(opens)):
            if opens[i] + step > now_ms:
                return
            r = json.loads(rows[i])
            yield BarPrices(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))

    def step(self, symbol: str) -> int:
        return self.series(symbol)[0]
