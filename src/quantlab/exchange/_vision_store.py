"""What the replay exchange serves from its root: bulk kline files and recorded API responses.

    data/{spot|futures/um}/{monthly|daily}/klines/{SYMBOL}/{interval}/*.zip   (data.binance.vision)
    api/fundingRate/{SYMBOL}.json                                           (GET /fapi/v1/fundingRate)
    api/exchangeInfo/{spot|futures_um}.json                                 (GET .../exchangeInfo)

Everything is parsed lazily, once, into what a response needs: rows as JSON text, with
decimals kept as the file's exact strings, the way Binance sends them.
"""

from __future__ import annotations

import calendar
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from quantlab.errors import SchemaError
from quantlab.exchange._klines_csv import read_kline_csv, unzip_csv

_PERIOD = re.compile(r"-(\d{4})-(\d{2})(?:-(\d{2}))?\.zip$")
_SYMBOL = re.compile(r"[A-Z0-9\-_]{1,20}")  # no dots: a symbol names a file or folder
T = TypeVar("T")

# A kline as Binance's JSON array: ints for times and trades, strings for decimals.
_KLINE_JSON = pl.concat_str(
    pl.lit("["),
    pl.col("open_time").cast(pl.String),
    pl.lit(',"'),
    pl.concat_str([pl.col(c) for c in ("open", "high", "low", "close", "volume")], separator='","'),
    pl.lit('",'),
    pl.col("close_time").cast(pl.String),
    pl.lit(',"'),
    pl.col("quote_volume"),
    pl.lit('",'),
    pl.col("trades").cast(pl.Int64).cast(pl.String),
    pl.lit(',"'),
    pl.concat_str(
        [pl.col(c) for c in ("taker_buy_base_volume", "taker_buy_quote_volume", "ignore")],
        separator='","',
    ),
    pl.lit('"]'),
)


class _Lazy:
    """A per-key cache filled once under a lock (the server answers on many threads)."""

    def __init__(self) -> None:
        self._cache: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, load: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = load()
            return self._cache[key]


class KlineStore:
    """Bulk kline files, parsed per (market folder, symbol, interval) into sorted JSON rows."""

    def __init__(self, root: Path):
        self.root = root
        self._rows = _Lazy()

    def _folders(self, base: str, symbol: str, interval: str = "*") -> list[Path]:
        # Monthly first so that daily files, where both exist, have the last word.
        return [
            folder
            for period in ("monthly", "daily")
            for folder in sorted(
                (self.root / base / period / "klines").glob(f"{symbol}/{interval}")
            )
            if folder.is_dir()
        ]

    def has_symbol(self, base: str, symbol: str) -> bool:
        return bool(_SYMBOL.fullmatch(symbol)) and bool(self._folders(base, symbol))

    def symbols(self, base: str) -> list[str]:
        """Every symbol with a kline folder under `base` (monthly or daily), sorted."""
        names = {folder.parent.name for folder in self._folders(base, "*")}
        return sorted(name for name in names if _SYMBOL.fullmatch(name))

    def rows(self, base: str, symbol: str, interval: str) -> tuple[list[int], list[str]]:
        """Sorted open times (ms) and the matching kline rows as JSON array text."""
        return self._rows.get((base, symbol, interval), lambda: self._load(base, symbol, interval))

    def _load(self, base: str, symbol: str, interval: str) -> tuple[list[int], list[str]]:
        frames = [
            read_kline_csv(unzip_csv(path.read_bytes(), str(path)), path.name, text=True)
            for folder in self._folders(base, symbol, interval)
            for path in sorted(folder.glob("*.zip"))
        ]
        if not frames:
            return [], []
        rows = (
            pl.concat(frames)
            .select("open_time", _KLINE_JSON.alias("row"))
            .unique("open_time", keep="last")
            .sort("open_time")
        )
        return rows["open_time"].to_list(), rows["row"].to_list()

    def last_period_end_ms(self) -> int | None:
        """End of the latest month or day any bulk file covers: after every stored candle."""
        ends = []
        for path in self.root.glob("data/**/klines/*/*/*.zip"):
            if m := _PERIOD.search(path.name):
                year, month, day = int(m[1]), int(m[2]), int(m[3]) if m[3] else None
                if day is None:
                    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
                    ends.append(calendar.timegm((year, month, 1, 0, 0, 0)) * 1000)
                else:
                    ends.append((calendar.timegm((year, month, day, 0, 0, 0)) + 86400) * 1000)
        return max(ends, default=None)


class RecordStore:
    """Recorded API responses under `root/api/`, served as Binance would."""

    def __init__(self, root: Path):
        self.root = root
        self._cache = _Lazy()

    def has_funding(self, symbol: str) -> bool:
        return bool(_SYMBOL.fullmatch(symbol)) and self._funding_path(symbol).is_file()

    def funding(self, symbol: str | None) -> tuple[list[int], list[str]]:
        """Sorted fundingTimes and the records as JSON text; every symbol's when None."""
        return self._cache.get(("funding", symbol), lambda: self._load_funding(symbol))

    def exchange_info(self, market: str) -> dict | None:
        """The recorded exchangeInfo body of `market` ("spot" or "futures_um"), if any."""
        path = self.root / "api" / "exchangeInfo" / f"{market}.json"
        return self._cache.get(("exchangeInfo", market), lambda: _read_json(path, dict))

    def _funding_path(self, symbol: str) -> Path:
        return self.root / "api" / "fundingRate" / f"{symbol}.json"

    def _load_funding(self, symbol: str | None) -> tuple[list[int], list[str]]:
        folder = self.root / "api" / "fundingRate"
        paths = sorted(folder.glob("*.json")) if symbol is None else [self._funding_path(symbol)]
        records = [r for p in paths for r in (_read_json(p, list) or [])]
        try:
            keyed = sorted(((int(r["fundingTime"]), r) for r in records), key=lambda k: k[0])
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(
                f"a record under {folder} has no integer fundingTime ({exc})"
            ) from None
        return [t for t, _ in keyed], [json.dumps(r, separators=(",", ":")) for _, r in keyed]


def _read_json(path: Path, expect: type[T]) -> T | None:
    if not path.is_file():
        return None
    body = json.loads(path.read_text())
    if not isinstance(body, expect):
        raise SchemaError(f"{path} holds a JSON {type(body).__name__}, not a {expect.__name__}")
    return body
