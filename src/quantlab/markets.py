"""What the `market_data` DAG ingests: markets, their symbols and intervals, and its schedule.

Loaded from `configs/markets.yaml` (or `$QUANTLAB_MARKETS`) into a frozen, typed model;
unknown keys are errors. Adding a symbol is one line under its market.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quantlab.config import PROJECT_ROOT, load_file
from quantlab.vocab import INTERVAL_MS, Market

DEFAULT_MARKETS = PROJECT_ROOT / "configs" / "markets.yaml"
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketSpec(_Model):
    """One market: the symbols to keep current, at which intervals, and what else to fetch."""

    symbols: tuple[str, ...]
    intervals: tuple[str, ...] = ("1h",)
    funding_rates: bool | tuple[str, ...] = Field(
        default=False,
        description="USD-M only: funding records of every symbol (true) or of the ones listed",
    )
    exchange_info: bool = Field(default=True, description="snapshot symbols and filters")

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in symbols if not _SYMBOL.match(s)]
        if bad:
            raise ValueError(f"{bad} are not Binance symbols; write them like BTCUSDT")
        dupes = sorted({s for s in symbols if symbols.count(s) > 1})
        if dupes:
            raise ValueError(f"{dupes} listed more than once")
        return symbols

    @field_validator("funding_rates")
    @classmethod
    def _check_funding(cls, value: bool | tuple[str, ...]) -> bool | tuple[str, ...]:
        if isinstance(value, tuple):
            bad = [s for s in value if not _SYMBOL.match(s)]
            if bad:
                raise ValueError(f"{bad} are not Binance symbols; write them like BTCUSDT")
        return value

    @field_validator("intervals")
    @classmethod
    def _check_intervals(cls, intervals: tuple[str, ...]) -> tuple[str, ...]:
        bad = [i for i in intervals if i not in INTERVAL_MS]
        if bad or not intervals:
            raise ValueError(
                f"intervals {bad or '[]'} unsupported; use some of {list(INTERVAL_MS)}"
            )
        return tuple(dict.fromkeys(intervals))


class MarketsConfig(_Model):
    """The `market_data` DAG's universe and schedule."""

    schedule: str = Field(
        default="0 * * * *", description="cron, UTC; each run ingests its interval"
    )
    start_date: date = date(2024, 1, 1)
    max_active_symbols: int = Field(default=4, ge=1, description="symbol tasks running at once")
    catchup_lookback: timedelta = Field(
        default=timedelta(hours=24),
        description="how far back a run resumes each series from its last stored record",
    )
    markets: dict[Market, MarketSpec]

    @field_validator("catchup_lookback", mode="before")
    @classmethod
    def _parse_lookback(cls, value: object) -> object:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"{value!r} is not a duration like 90m, 24h or 2d")
        return timedelta(**{_UNIT[match[2]]: int(match[1])})

    @model_validator(mode="after")
    def _check(self) -> MarketsConfig:
        if not self.markets:
            raise ValueError("markets is empty; list at least one market with its symbols")
        for name, spec in self.markets.items():
            if spec.funding_rates not in (False, ()) and name != "futures_um":
                raise ValueError(f"markets.{name}.funding_rates: funding exists on futures_um only")
        if len(self.schedule.split()) not in (1, 5):
            raise ValueError(
                f"schedule {self.schedule!r} is not a cron expression like '0 * * * *'"
            )
        return self

    def symbol_tasks(self) -> list[dict]:
        """One entry per (market, symbol), with the intervals to ingest: the DAG's mapped tasks."""
        return [
            {"market": market, "symbol": symbol, "intervals": list(spec.intervals)}
            for market, spec in self.markets.items()
            for symbol in spec.symbols
        ]

    def funding_symbols(self) -> list[str]:
        spec = self.markets.get("futures_um")
        if spec is None or spec.funding_rates is False:
            return []
        return list(spec.symbols) if spec.funding_rates is True else list(spec.funding_rates)

    def exchange_info_markets(self) -> list[str]:
        return [market for market, spec in self.markets.items() if spec.exchange_info]


def markets_path(path: str | Path | None = None) -> Path:
    """`path`, else `$QUANTLAB_MARKETS`, else `configs/markets.yaml`."""
    return Path(path or os.environ.get("QUANTLAB_MARKETS") or DEFAULT_MARKETS)


def load_markets(path: str | Path | None = None) -> MarketsConfig:
    """Load and validate the market-data config."""
    return load_file(
        markets_path(path),
        MarketsConfig,
        what="markets config",
        hint="Fix these keys (see configs/markets.yaml for every key).",
    )
