"""Names and periods of data.binance.vision kline files, from a symbol, an interval and a date."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from quantlab.errors import ConfigError
from quantlab.vocab import INTERVAL_MS, Market

Period = Literal["monthly", "daily"]
MARKET_DIRS = {"spot": "data/spot", "futures_um": "data/futures/um"}
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class VisionFile:
    """One bulk zip: the bars of `symbol` opening in [start_ms, end_ms] (the period, in ms).

    `rel` is its path in the layout (`data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2023-01.zip`);
    `path` is where it lies in a local folder, `url` where it is fetched from over HTTP.
    """

    market: Market
    symbol: str
    interval: str
    period: Period
    date: str  # "YYYY-MM" (monthly) or "YYYY-MM-DD" (daily)
    start_ms: int
    end_ms: int  # the last millisecond of the period
    rel: str
    path: Path | None = None
    url: str | None = None

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def location(self) -> str:
        return str(self.path) if self.path is not None else str(self.url)


class Layout:
    """Builds `VisionFile`s under a local `root` or an HTTP `base` URL."""

    def __init__(self, root: Path | None, base: str | None):
        self.root, self.base = root, base

    def file(
        self, market: Market, symbol: str, interval: str, y: int, m: int, d: int | None = None
    ) -> VisionFile:
        """The monthly file of (y, m), or the daily file of (y, m, d)."""
        if d is None:
            period: Period = "monthly"
            date = f"{y:04d}-{m:02d}"
            start = calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
            end = start + calendar.monthrange(y, m)[1] * _DAY_MS - 1
        else:
            period, date = "daily", f"{y:04d}-{m:02d}-{d:02d}"
            start = calendar.timegm((y, m, d, 0, 0, 0)) * 1000
            end = start + _DAY_MS - 1
        rel = (
            f"{MARKET_DIRS[market]}/{period}/klines/{symbol}/{interval}/"
            f"{symbol}-{interval}-{date}.zip"
        )
        return VisionFile(
            market,
            symbol,
            interval,
            period,
            date,
            start,
            end,
            rel,
            path=None if self.root is None else self.root / rel,
            url=None if self.base is None else f"{self.base}/{rel}",
        )

    def months(
        self, market: Market, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> list[VisionFile]:
        """The monthly file of every month from the one holding start_ms to the one holding end_ms."""
        first, last = (time.gmtime(ms // 1000) for ms in (start_ms, end_ms))
        out, (y, m) = [], (first.tm_year, first.tm_mon)
        while (y, m) <= (last.tm_year, last.tm_mon):
            out.append(self.file(market, symbol, interval, y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def days(self, month: VisionFile) -> list[VisionFile]:
        """The daily files of a monthly file's month."""
        y, m = int(month.date[:4]), int(month.date[5:7])
        return [
            self.file(month.market, month.symbol, month.interval, y, m, d)
            for d in range(1, calendar.monthrange(y, m)[1] + 1)
        ]


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ConfigError(
            f"interval {interval!r} is not supported; use one of {', '.join(INTERVAL_MS)}"
        ) from None


def check_market(market: str) -> None:
    if market not in MARKET_DIRS:
        raise ConfigError(f"unknown market {market!r}; use one of {sorted(MARKET_DIRS)}")
