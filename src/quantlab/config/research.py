"""The research half's config sections: features, labels, training, signal, backtest, risk,
paper and tracking."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from quantlab.config.data import _Model

_TIMEFRAME = Literal["5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]


class CrossSectionConfig(_Model):
    """Features compared across symbols at each timestamp: `cs_rank_<f>` in [0, 1], `cs_z_<f>`."""

    rank: tuple[str, ...] = ("logret_24",)
    zscore: tuple[str, ...] = ("rsi_14",)
    min_symbols: int = Field(default=2, ge=2, description="fewer symbols at a timestamp -> null")


class NormalizeConfig(_Model):
    """Rolling per-symbol z-scores over the past `window` bars: `<f>_rz<window>`."""

    window: int = Field(default=720, ge=2)
    columns: tuple[str, ...] = ("natr_14", "bb_width_20")


class RegimeConfig(_Model):
    """Six regimes from trend strength (ADX) and volatility percentiles over past bars only."""

    adx_window: int = Field(default=14, ge=2)
    atr_window: int = Field(default=14, ge=2)
    bb_window: int = Field(default=20, ge=2)
    lookback: int = Field(default=720, ge=20, description="bars behind each percentile")
    strong_adx: float = Field(default=25.0, gt=0)
    weak_adx: float = Field(default=20.0, gt=0)
    high_vol_pct: float = Field(default=0.70, gt=0, lt=1)
    spike_pct: float = Field(default=0.95, gt=0, le=1)
    squeeze_pct: float = Field(default=0.10, gt=0, lt=1)

    @model_validator(mode="after")
    def _check_order(self) -> RegimeConfig:
        if self.weak_adx >= self.strong_adx:
            raise ValueError("regime.weak_adx must be below regime.strong_adx")
        if not self.squeeze_pct < self.high_vol_pct < self.spike_pct:
            raise ValueError(
                "regime percentiles must satisfy squeeze_pct < high_vol_pct < spike_pct"
            )
        return self


class EvaluateConfig(_Model):
    """`quantlab features evaluate`: IC per period, quantile spreads, grades."""

    mode: Literal["auto", "time_series", "cross_section"] = "auto"
    cross_section_min: int = Field(default=10, ge=3, description="symbols for auto cross-section")
    period: Literal["1d", "1w", "1mo"] = "1w"
    quantiles: int = Field(default=5, ge=2, le=20)
    min_obs: int = Field(default=30, ge=3, description="rows a period needs for its IC")
    top: int = Field(default=12, ge=1, description="features plotted in the HTML report")


class FeaturesConfig(_Model):
    """The feature set a run builds; every name is in the registry (`quantlab features list`)."""

    columns: tuple[str, ...] = (
        "logret_1",
        "logret_4",
        "logret_24",
        "rsi_7",
        "rsi_14",
        "macd_pct_12_26_9",
        "macd_hist_pct_12_26_9",
        "stoch_k_14_3_3",
        "willr_14",
        "roc_48",
        "ema_dist_21",
        "ema_dist_50",
        "ema_dist_200",
        "adx_14",
        "plus_di_14",
        "minus_di_14",
        "natr_14",
        "bb_width_20",
        "bb_pctb_20",
        "kc_pos_20",
        "rvol_24",
        "parkinson_24",
        "garman_klass_24",
        "mfi_14",
        "obv_flow_24",
        "volume_z_24",
        "vwap_dist_24",
        "taker_buy_ratio_24",
        "trades_z_24",
        "range_hl",
        "close_pos",
        "regime",
    )
    timeframes: dict[_TIMEFRAME, tuple[str, ...]] = Field(
        default_factory=lambda: {"4h": ("logret_1", "rsi_14"), "1d": ("logret_1", "natr_14")},
        description="higher timeframe -> registry features on its closed bars: `<f>_<tf>`",
    )
    cross_section: CrossSectionConfig = CrossSectionConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    regime: RegimeConfig = RegimeConfig()
    funding: tuple[str, ...] = Field(
        default=("funding_rate", "funding_mean_21", "funding_z_90"),
        description="built only when a `funding_rates` frame is given (perpetuals)",
    )
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _check_unique(self) -> FeaturesConfig:
        seen = [*self.columns, *self.funding]
        dupes = sorted({c for c in seen if seen.count(c) > 1})
        if dupes:
            raise ValueError(f"features lists {dupes} more than once")
        return self


class BarrierConfig(_Model):
    """Triple barrier: take-profit / stop-loss at `mult * sigma * sqrt(vertical)` from the entry close."""

    vertical: int | None = Field(default=None, ge=1, description="bars; None = labels.horizon")
    tp_mult: float = Field(default=1.0, gt=0)
    sl_mult: float = Field(default=1.0, gt=0)
    vol_window: int = Field(default=24, ge=2, description="bars of past log returns behind sigma")
    touch: Literal["high_low", "close"] = "high_low"


class RegimeLabelConfig(_Model):
    """The regime `horizon` bars ahead as a label: `regime_<horizon>`."""

    horizon: int = Field(default=24, ge=1)
    rules: RegimeConfig = RegimeConfig()


class LabelsConfig(_Model):
    horizon: int = Field(default=4, ge=1, description="bars ahead of the primary (trained) label")
    horizons: tuple[int, ...] = Field(
        default=(1, 4, 24), description="forward-return horizons; the primary one is always added"
    )
    dead_zone: float = Field(
        default=0.003, ge=0, description="|log return| at or below this is 'flat' (round-trip cost)"
    )
    barrier: BarrierConfig | None = BarrierConfig()
    regime: RegimeLabelConfig | None = RegimeLabelConfig()

    @model_validator(mode="after")
    def _check_horizons(self) -> LabelsConfig:
        if any(h < 1 for h in self.horizons):
            raise ValueError("labels.horizons must all be >= 1 bar")
        return self

    @property
    def all_horizons(self) -> tuple[int, ...]:
        """`horizons` plus the primary `horizon`, sorted, without repeats."""
        return tuple(sorted({*self.horizons, self.horizon}))


# A calendar period polars' datetime_range steps by: 12h, 30d, 2w, 1mo, 1y.
_PERIOD = re.compile(r"[1-9][0-9]*(h|d|w|mo|q|y)")


def check_storage_url(url: str) -> None:
    """Reject a study storage URL Optuna cannot use here, saying which form to write."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "postgresql":
        raise ValueError(
            "train.storage uses postgresql://, which SQLAlchemy 2 maps to psycopg 3 (not "
            "installed); write postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB"
        )
    if scheme not in ("sqlite", "postgresql+psycopg2"):
        raise ValueError(
            f"train.storage {scheme or url!r} is not a study storage URL; use "
            "postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB, sqlite:///PATH, or null "
            "for SQLite under paths.experiments"
        )


class TrainConfig(_Model):
    """Walk-forward training; the windows (`quantlab.train.make_splits`) are by time.

    The test blocks are `folds` equal blocks after the initial span, or blocks of `test_bars`
    bars, or of a calendar `test_period`: exactly one of the three is set. The training window
    grows (expanding) or keeps `train_bars` bars (sliding); its last `valid_fraction` (or
    `valid_bars`) is the inner validation slice that tunes the model.
    """

    models: tuple[Literal["lightgbm", "xgboost"], ...] = Field(
        default=("lightgbm",),
        min_length=1,
        description="the booster kinds to walk forward; backtest and risk trade the first",
    )
    target: Literal["binary", "direction", "triple_barrier", "regression"] = Field(
        default="binary",
        description="what to learn from `labels` (quantlab.train.targets): label_up, the "
        "3-class dir_<horizon>, tb_label, or fwd_ret_<horizon>",
    )
    class_weight: Literal["none", "balanced"] = Field(
        default="none",
        description="balanced: weight each class by its inverse frequency in a fold's "
        "training rows (classification targets only)",
    )
    per_symbol: bool = Field(
        default=False,
        description="one model per symbol per fold; false: one pooled model with the symbol "
        "as a categorical feature",
    )
    window: Literal["expanding", "sliding"] = "expanding"
    train_bars: int | None = Field(
        default=None, ge=1, description="the initial span and the sliding window; None: by fraction"
    )
    min_train_fraction: float = Field(default=0.4, gt=0, lt=1)
    folds: int | None = Field(default=4, ge=3)
    test_bars: int | None = Field(default=None, ge=1)
    test_period: str | None = Field(default=None, description="e.g. 30d, 2w, 1mo")
    valid_fraction: float | None = Field(default=0.2, gt=0, lt=1)
    valid_bars: int | None = Field(default=None, ge=1)
    embargo_bars: int | None = Field(default=None, ge=0, description="None: labels.horizon")
    early_stopping_rounds: int | None = Field(default=None, ge=1)
    # Optuna (quantlab.train.search): one study per kind and fold, on an RDB storage.
    trials: int = Field(
        default=20, ge=1, description="finished (complete + pruned) trials per study"
    )
    pruner: Literal["percentile", "median", "none"] = Field(
        default="percentile",
        description="stop a trial whose valid loss is outside the best prune_percentile "
        "(percentile) or half (median) of the earlier trials at a round",
    )
    prune_percentile: float = Field(
        default=25.0, gt=0, lt=100, description="percentile: the share of trials kept at a round"
    )
    prune_warmup_rounds: int = Field(
        default=10, ge=0, description="rounds before a trial may be pruned"
    )
    prune_startup_trials: int = Field(
        default=3, ge=0, description="trials that finish unpruned first"
    )
    report_interval: int = Field(
        default=10, ge=1, description="report to the pruner every N rounds"
    )
    storage: str | None = Field(
        default=None, description="study storage URL; None: SQLite under paths.experiments"
    )
    heartbeat_s: int = Field(default=10, ge=1, description="a trial silent 2x this long is FAIL")
    num_boost_round: int = Field(default=200, ge=10)
    seed: int = 42
    experiment: str = "research"
    register_as: str | None = "quantlab-research"

    @property
    def primary_model(self) -> str:
        """The kind whose predictions backtest and risk trade: the first listed."""
        return self.models[0]

    @model_validator(mode="after")
    def _check_windows(self) -> TrainConfig:
        if len(set(self.models)) != len(self.models):
            raise ValueError(
                f"train.models lists a kind twice ({list(self.models)}); list each once"
            )
        if self.target == "regression" and self.class_weight != "none":
            raise ValueError(
                "train.class_weight balanced weighs classes, and train.target regression has "
                "none; set class_weight: none or pick a classification target"
            )
        tests = {"folds": self.folds, "test_bars": self.test_bars, "test_period": self.test_period}
        if sum(v is not None for v in tests.values()) != 1:
            raise ValueError(
                f"train: set exactly one of folds, test_bars, test_period (got {tests}); "
                "set the others to null"
            )
        if self.test_period is not None and not _PERIOD.fullmatch(self.test_period):
            raise ValueError(
                f"train.test_period {self.test_period!r} is not a period such as 30d, 2w or 1mo"
            )
        if self.storage is not None:
            check_storage_url(self.storage)
        if (self.valid_fraction is None) == (self.valid_bars is None):
            raise ValueError(
                "train: set exactly one of valid_fraction and valid_bars; set the other to null"
            )
        return self


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


class PaperConfig(_Model):
    ledger_url: str = "sqlite:///data/ledger.sqlite"
    account: str = "paper"
    equity: float = Field(default=100_000.0, gt=0)
    fee_rate: float = Field(default=0.001, ge=0)
    min_notional: float = Field(default=10.0, ge=0)
    qty_decimals: int = Field(default=5, ge=0, le=8)


class TrackingConfig(_Model):
    uri: str = "sqlite:///experiments/mlflow.db"
    artifacts: str = "experiments/artifacts"
