"""The research half's config sections: features, labels, training and tracking (the signal,
sizing, backtest and paper sections are in `quantlab.config.portfolio`)."""

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


class TrackingConfig(_Model):
    uri: str = "sqlite:///experiments/mlflow.db"
    artifacts: str = "experiments/artifacts"
