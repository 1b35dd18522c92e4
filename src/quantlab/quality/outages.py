"""Known exchange outages: windows in which missing candles are the exchange's doing, not ours.

The list lives in `configs/known_outages.yaml` (path in `validate.known_outages`). A
calendar gap inside a window is reported as a known gap (info), not as a missing-candle error
(gaps the exchange confirmed empty, ingest's `klines_gaps`, are known the same way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quantlab.config import load_file, resolve_path
from quantlab.errors import ConfigError
from quantlab.vocab import Market


class Outage(BaseModel):
    """One window `[start, end)` in UTC, for one market and some symbols (`*`: all of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    market: Market | Literal["*"]
    symbols: tuple[str, ...] | Literal["*"] = "*"
    start: datetime
    end: datetime
    reason: str = Field(min_length=1)
    source: str = Field(min_length=1)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("write the time in UTC with a zone, e.g. 2023-03-24T12:00:00Z")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Outage:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def covers(self, market: str, symbol: str) -> bool:
        return self.market in ("*", market) and (self.symbols == "*" or symbol in self.symbols)

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} UTC {self.market}: {self.reason}"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    outages: tuple[Outage, ...] = ()


def load_outages(path: Path | None) -> tuple[Outage, ...]:
    """The outages listed in `path` (None: no list, so every gap is unexplained)."""
    if path is None:
        return ()
    path = resolve_path(path)
    if not path.exists():
        raise ConfigError(
            f"known outages file {path} does not exist; create it (see "
            "configs/known_outages.yaml) or set validate.known_outages to null"
        )
    return load_file(
        path,
        _File,
        what="known outages file",
        hint="Each entry needs market, symbols, start, end (UTC), reason and source.",
    ).outages
