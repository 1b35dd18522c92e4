"""The portfolio's config sections: the signal rule, sizing and risk limits, the backtest's
costs and venue, and paper trading (what `quantlab.portfolio` and the stages around it read)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quantlab.config.data import _Model


class SignalConfig(_Model):
    """How model scores become a direction; shared by the backtest and risk so they agree."""

    smoothing: int = Field(default=4, ge=1, description="mean of the last N scores per symbol")
    threshold: float = Field(default=0.2, ge=0, le=1, description="|score| needed to hold")
    allow_short: bool = False


class FeeTier(_Model):
    """Fee rates of one market, as fractions of the traded notional (0.001 = 0.1%)."""

    maker: float = Field(ge=0)
    taker: float = Field(ge=0)


class FeesConfig(_Model):
    """Binance's base (VIP 0) tiers; market orders at the open pay `taker`."""

    spot: FeeTier = FeeTier(maker=0.001, taker=0.001)
    futures_um: FeeTier = FeeTier(maker=0.0002, taker=0.0005)
    bnb_discount: bool = Field(
        default=False, description="pay fees in BNB: 25% off on spot, 10% off on USD-M"
    )


class SlippageOverride(_Model):
    """One symbol's own slippage terms; an unset term keeps the section's default."""

    half_spread_bps: float | None = Field(default=None, ge=0)
    impact_coef: float | None = Field(default=None, ge=0)


class SlippageConfig(_Model):
    """Slippage fraction = half_spread_bps * 1e-4 + impact_coef * sigma_bar * sqrt(participation).

    participation: the order's notional over the previous bar's quote volume; sigma_bar: an
    EWMA of one-bar log returns up to the previous bar (both causal).
    """

    half_spread_bps: float = Field(default=1.0, ge=0)
    impact_coef: float = Field(default=1.0, ge=0)
    ewma_lambda: float = Field(default=0.94, gt=0, lt=1)
    per_symbol: dict[str, SlippageOverride] = Field(default_factory=dict)


class BacktestConfig(_Model):
    init_cash: float = Field(default=100_000.0, gt=0)
    rebalance_band: float = Field(
        default=0.02, ge=0, lt=1, description="skip an order moving a weight by less than this"
    )
    max_leverage: float = Field(
        default=1.0, gt=0, description="gross exposure / equity after a trade; spot is always 1"
    )
    fees: FeesConfig = FeesConfig()
    slippage: SlippageConfig = SlippageConfig()


class RiskConfig(_Model):
    """Sizing (`quantlab.portfolio.sizing.size_targets`), its caps and exits, and the
    kill-switch on an equity path (`quantlab.portfolio.killswitch`)."""

    policy: Literal["vol_target", "kelly", "prob_size"] = Field(
        default="vol_target",
        description="vol_target: target_vol / EWMA vol / n_symbols; kelly: fractional Kelly "
        "from prob_up/prob_down; prob_size: AFML's 2*Phi(z)-1 times max_weight",
    )
    target_vol: float = Field(default=0.20, gt=0, description="annualised, per the whole book")
    vol_halflife: float | None = Field(
        default=36.0, gt=0, description="bars; the EWMA's lambda = 0.5 ** (1 / halflife)"
    )
    vol_lambda: float | None = Field(
        default=None, gt=0, lt=1, description="RiskMetrics lambda; set it or vol_halflife"
    )
    vol_min_bars: int = Field(
        default=72, ge=2, description="returns seen before an EWMA sigma counts (else no size)"
    )
    kelly_fraction: float = Field(default=0.5, gt=0, le=1)
    kelly_payoff: Literal["empirical", "even"] = Field(
        default="empirical",
        description="b from the asset's past average win/loss over the horizon, or b = 1",
    )
    payoff_window: int = Field(default=720, ge=2, description="past horizon returns behind b")
    max_weight: float = Field(default=0.5, gt=0, description="|weight| per symbol")
    max_gross: float = Field(default=1.0, gt=0, description="sum of |weight|")
    max_net: float = Field(default=1.0, gt=0, description="|sum of weight|")
    max_book_vol: float | None = Field(
        default=None, gt=0, description="annualised sqrt(w' Sigma w), EWMA covariance; None: off"
    )
    take_profit: float | None = Field(
        default=None, gt=0, description="x EWMA sigma at entry x sqrt(bars held); None: off"
    )
    stop_loss: float | None = Field(
        default=None, gt=0, description="x EWMA sigma at entry x sqrt(bars held); None: off"
    )
    kill_drawdown: float | None = Field(
        default=0.25, gt=0, le=1, description="flatten when equity is this far below its peak"
    )
    kill_daily_loss: float | None = Field(
        default=0.05, gt=0, le=1, description="flatten when equity lost this much since 00:00 UTC"
    )
    kill_cooldown_bars: int = Field(default=24, ge=1, description="bars held flat after a trip")
    calibration_bins: int = Field(default=10, ge=2, le=100)

    @model_validator(mode="after")
    def _check_vol(self) -> RiskConfig:
        if (self.vol_halflife is None) == (self.vol_lambda is None):
            raise ValueError(
                "risk: set exactly one of vol_halflife and vol_lambda; set the other to null"
            )
        return self

    @property
    def ewma_lambda(self) -> float:
        """The EWMA decay per bar: vol_lambda, or 0.5 ** (1 / vol_halflife)."""
        if self.vol_lambda is not None:
            return self.vol_lambda
        assert self.vol_halflife is not None
        return 0.5 ** (1.0 / self.vol_halflife)
