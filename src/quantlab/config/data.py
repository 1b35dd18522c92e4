"""The data half's config sections: paths, the universe, the exchange, the quality gate."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantlab.errors import ConfigError
from quantlab.vocab import Interval, Market


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectStoreConfig(_Model):
    """How deltalake reaches an S3-compatible store; credentials are never set here.

    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) come from the
    environment, read by deltalake itself, as on any AWS client.
    """

    endpoint: str | None = Field(
        default=None, description="e.g. http://127.0.0.1:9000 for MinIO; null: AWS S3"
    )
    region: str | None = Field(default=None, description="null: AWS_REGION from the environment")
    allow_http: bool = Field(default=False, description="allow a plain-http endpoint")
    # Delta needs put-if-absent for its log to stay safe with concurrent writers; delta-rs
    # 1.x has no locking provider (its DynamoDB log store is gone), so conditional put it is.
    conditional_put: Literal["etag"] = "etag"

    def options(self) -> dict[str, str]:
        """deltalake's `storage_options` for these settings."""
        out = {"conditional_put": self.conditional_put, "allow_http": str(self.allow_http).lower()}
        if self.endpoint:
            out["endpoint"] = self.endpoint
        if self.region:
            out["region"] = self.region
        return out


class PathsConfig(_Model):
    data: Path = Path("data")
    experiments: Path = Path("experiments")
    catalog_uri: str | None = Field(
        default=None,
        description="s3://bucket/prefix to keep the catalog in object storage; null: "
        "<data>/catalog. Locks and artifacts stay under <data>",
    )
    object_store: ObjectStoreConfig = ObjectStoreConfig()

    @model_validator(mode="after")
    def _check_catalog_uri(self) -> PathsConfig:
        if self.catalog_uri is None:
            return self
        url = urlsplit(self.catalog_uri)
        if url.scheme != "s3" or not url.netloc or url.username or url.password:
            raise ValueError(
                f"paths.catalog_uri {self.catalog_uri!r} is not s3://bucket/prefix (without "
                "credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment)"
            )
        return self

    @property
    def catalog(self) -> Path | str:
        """The catalog's root: a local folder, or the `catalog_uri` of an object store."""
        return self.catalog_uri.rstrip("/") if self.catalog_uri else self.data / "catalog"

    def storage_options(self) -> dict[str, str] | None:
        """deltalake's storage options for the catalog; None for a local folder."""
        return self.object_store.options() if self.catalog_uri else None

    @property
    def reports(self) -> Path:
        return self.data / "reports"


# Binance's symbol pattern, ^[A-Z0-9-_.]{1,20}$, less symbols of dots alone: a symbol also
# names a folder of bulk files.
SYMBOL = re.compile(r"(?=.*[A-Z0-9_-])[A-Z0-9_.-]{1,20}")
# Hosts of the real exchange, reached only over https; http stays for a local replay.
_BINANCE_HOSTS = ("binance.com", "binance.vision", "binancefuture.com", "binance.us")


def check_symbol(symbol: object) -> str:
    """`symbol` when it is spelled like a Binance symbol; a ConfigError naming it otherwise."""
    if isinstance(symbol, str) and SYMBOL.fullmatch(symbol):
        return symbol
    raise ConfigError(
        f"symbol {symbol!r} is not a Binance symbol (^[A-Z0-9-_.]{{1,20}}$): spell it like "
        "BTCUSDT, in capitals, without spaces or slashes"
    )


class UniverseConfig(_Model):
    market: Market = "spot"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    interval: Interval = "1h"
    start: date = date(2023, 1, 1)
    end: date = date(2025, 1, 1)

    @model_validator(mode="after")
    def _check_range(self) -> UniverseConfig:
        if self.end <= self.start:
            raise ValueError(
                f"universe.end ({self.end}) must be after universe.start ({self.start})"
            )
        if not self.symbols:
            raise ValueError("universe.symbols is empty; list at least one symbol such as BTCUSDT")
        for symbol in self.symbols:
            try:
                check_symbol(symbol)
            except ConfigError as exc:
                raise ValueError(f"universe.symbols: {exc}") from None
        return self


class ExchangeConfig(_Model):
    source: Literal["replay", "binance", "freqtrade"] = "replay"
    base_url: str | None = None
    replay_root: Path = Path("data/sample")
    # With source freqtrade: the folder of freqtrade's futures Feather files the research
    # ingest reads klines, mark klines and funding from (quantlab.ingest.freqtrade).
    freqtrade_root: Path = Path("data/freqtrade")
    timeout_s: float = Field(default=10.0, gt=0, description="seconds per HTTP request")
    max_retries: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _check_url(self) -> ExchangeConfig:
        if self.source == "binance" and not self.base_url:
            raise ValueError("exchange.base_url is required when exchange.source is 'binance'")
        url = urlsplit(self.base_url or "")
        host = (url.hostname or "").lower()
        if url.scheme == "http" and any(
            host == h or host.endswith("." + h) for h in _BINANCE_HOSTS
        ):
            raise ValueError(
                f"exchange.base_url {self.base_url!r} reaches Binance over plain http; use "
                f"https://{url.netloc}{url.path} (http is for a local replay on 127.0.0.1)"
            )
        return self


# Every check the gate's suites run (klines, funding_rates, exchange_info), by name: what
# `validate.severity` may name. tests/quality/test_severity.py keeps it equal to the suites'.
VALIDATE_CHECKS = (
    "columns_match",
    *[f"not_null.{c}" for c in ("market", "symbol", "interval", "open_time", "close_time")],
    *[f"not_null.{c}" for c in ("open", "high", "low", "close", "volume", "quote_volume")],
    *[f"not_null.{c}" for c in ("trades", "taker_buy_base_volume", "taker_buy_quote_volume")],
    *[f"not_null.{c}" for c in ("funding_time", "funding_rate")],
    *[f"not_null.{c}" for c in ("status", "base_asset", "quote_asset")],
    "unique_key",
    "interval_matches",
    *[f"price_positive.{c}" for c in ("open", "high", "low", "close")],
    *[f"non_negative.{c}" for c in ("volume", "quote_volume", "trades")],
    *[f"non_negative.{c}" for c in ("taker_buy_base_volume", "taker_buy_quote_volume")],
    "open_time_in_range",
    "close_time_in_range",
    "open_time_aligned",
    "open_time_increasing",
    "close_time_within_bar",
    "ohlc_consistent",
    "taker_volume_within_total",
    "close_time_exact",
    "zero_volume",
    "return_outlier",
    "calendar_gaps",
    "known_gaps",
    "stale_series",
    "market_is_futures",
    "funding_time_in_range",
    "funding_time_increasing",
    "funding_rate_within_cap",
    "funding_rate_extreme",
    "mark_price_positive",
    "funding_interval",
    "market_known",
    "status_known",
    "tick_size_positive",
    "step_size_positive",
    "min_notional_non_negative",
    "price_range",
    "qty_range",
    "symbol_matches_assets",
)
CheckSeverity = Literal["error", "warning", "off"]


class ValidateConfig(_Model):
    """The data-quality gate (`quantlab.quality`): thresholds, the known-outage list and
    each check's severity where it is not the default."""

    min_price: float = 1e-8
    max_return_sigmas: float = Field(default=12.0, gt=0)
    min_year: int = 2017
    max_year: int = 2100
    known_outages: Path | None = Field(
        default=Path("configs/known_outages.yaml"),
        description="YAML list of exchange outages (relative: to the project root); null: none",
    )
    max_stale_bars: int = Field(
        default=2,
        ge=0,
        description="a series whose last candle is more than this many bars older than the "
        "last closed one at the reference time is stale (a warning)",
    )
    severity: dict[str, CheckSeverity] = Field(
        default_factory=dict,
        description="per check name: error (fails the gate), warning (reported) or off (not "
        "run); a check not named keeps its default. The summary lists every change",
    )

    @model_validator(mode="after")
    def _known_checks(self) -> ValidateConfig:
        unknown = [name for name in self.severity if name not in VALIDATE_CHECKS]
        if unknown:
            raise ValueError(
                f"validate.severity: unknown check {unknown[0]!r}; name one of "
                + ", ".join(VALIDATE_CHECKS)
            )
        return self
