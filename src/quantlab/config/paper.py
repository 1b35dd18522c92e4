"""The `paper:` section: the paper-execution bridge (`quantlab.execution`).

Targets become orders on a venue (the simulated `paper` venue, or Binance's spot testnet /
demo mode through the signed adapter), booked in a ledger (SQLite on the embedded default,
PostgreSQL through psycopg2). Costs and filter rounding are the backtest's (`backtest:`,
`exchange_info`); the halt tier of the breakers is the backtest's kill-switch (`risk.kill_*`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quantlab.config.data import _Model
from quantlab.errors import ConfigError

# Hosts that trade real money: refused unless `binance.allow_mainnet`.
MAINNET_HOSTS = ("api.binance.com", "api1.binance.com", "api2.binance.com", "api3.binance.com",
                 "api4.binance.com", "api-gcp.binance.com", "api.binance.us")  # fmt: skip
TESTNET_URL = "https://testnet.binance.vision"
DEMO_URL = "https://demo-api.binance.com"


class BinanceVenueConfig(_Model):
    """The signed spot adapter: where it trades and how it signs."""

    base_url: str = TESTNET_URL  # testnet; demo mode: https://demo-api.binance.com
    allow_mainnet: bool = False  # a mainnet host is refused unless this is true
    key_type: Literal["hmac", "ed25519"] = "hmac"
    credentials: str = (
        "binance"  # secrets <credentials>_api_key / _api_secret (env or Airflow conn)
    )
    recv_window_ms: int = Field(default=5000, gt=0, le=60000)
    timeout_s: float = Field(default=10.0, gt=0)
    query_retries: int = Field(
        default=5, ge=1
    )  # lookups by origClientOrderId after an unknown outcome
    query_backoff_s: float = Field(default=0.5, ge=0)


class PaperLimitsConfig(_Model):
    """Checked before an order is sent (tiered circuit breakers).

    The halt tier is the backtest's kill-switch (`risk.kill_drawdown`, `risk.kill_daily_loss`);
    below it, a drawdown of `reduce_drawdown` scales every new exposure by `reduce_scale`.
    """

    max_order_notional: float | None = Field(default=50_000.0, gt=0)
    max_position_notional: float | None = Field(default=60_000.0, gt=0)
    reduce_drawdown: float | None = Field(default=0.10, gt=0, lt=1)
    reduce_scale: float = Field(default=0.5, gt=0, le=1)
    max_orders_per_run: int = Field(default=50, ge=1)


class VirtualConfig(_Model):
    """The virtual-position monitor: levels each open position is watched against."""

    take_profit: float = Field(default=0.03, gt=0)  # fraction of the entry price in its favour
    stop_loss: float = Field(default=0.02, gt=0)  # fraction against it
    approach: float = Field(default=0.8, gt=0, lt=1)  # "approached": this share of the distance
    max_bars: int = Field(default=48, ge=1)  # expired after this many bars open


class PaperConfig(_Model):
    venue: Literal["paper", "binance"] = "paper"
    ledger_url: str = "sqlite:///data/ledger.sqlite"  # or postgresql://user@host:5432/db
    account: str = Field(default="paper", min_length=1)
    initial_balances: dict[str, float] = Field(default_factory=lambda: {"USDT": 100_000.0})
    session_bars: int = Field(default=720, ge=1)  # a new account starts this many bars back
    order_type: Literal["market", "limit"] = "market"
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"  # limit orders
    limit_offset_bps: float = Field(default=5.0, ge=0)  # limit price: decision close -/+ this
    limit_ttl_bars: int = Field(default=1, ge=1)  # a GTC limit still open after this is cancelled
    max_participation: float = Field(default=0.1, gt=0, le=1)  # of a bar's volume, limit fills
    missing_checks: int = Field(default=3, ge=1)  # reconciliations before a lost order is settled
    lock_wait_s: float = Field(default=0.0, ge=0)  # a second run waits this long, then exits
    binance: BinanceVenueConfig = BinanceVenueConfig()
    limits: PaperLimitsConfig = PaperLimitsConfig()
    virtual: VirtualConfig = VirtualConfig()

    @model_validator(mode="after")
    def _check(self) -> PaperConfig:
        quote = [a for a, v in self.initial_balances.items() if v < 0]
        if quote:
            raise ConfigError(f"paper.initial_balances {quote} are negative; balances start >= 0")
        return self
