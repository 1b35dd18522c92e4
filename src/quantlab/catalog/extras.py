"""Typed lineage facts: what a version's `extra` holds where other stages read it.

A dataset whose lineage carries facts other stages read (the gate's verdict, the backtest's
statistics, the training run, the sizing) names one of these models in its registry entry
(`quantlab.catalog.datasets`); readers go through `Catalog.extra(ref, Model)` or
`Model.of(lineage)` instead of picking keys out of another stage's dict. The stored JSON keeps
its shape, so versions written before a model existed read the same.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from quantlab.catalog.refs import Lineage


class Extra(BaseModel):
    """Base of the typed `extra` models: frozen; keys a model does not name are kept as
    they are in the stored JSON and ignored when reading."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def of(cls, lineage: Lineage) -> Self:
        """The model read from a version's lineage."""
        return cls.model_validate(lineage.extra)


class GateVerdict(Extra):
    """A `<name>_checks` version's verdict, what `require_passed` reads."""

    passed: bool = False
    failed_checks: list[str] = []
    counts: dict[str, int] = {}
    data_docs: str | None = None
    # Checks not run because the source lacks their columns (freqtrade keeps OHLCV only):
    # check -> why. Empty before it was kept.
    skipped: dict[str, str] = {}


class BacktestStats(Extra):
    """The figures of one backtest run; None where undefined (no closed trade, ...)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    total_return: float | None = None
    sharpe: float | None = None  # annualised, from the per-bar returns of the out-of-fold span
    max_drawdown: float | None = None
    trades: int | None = None
    psr: float | None = None  # P(true Sharpe > 0); None before it was kept
    # The deflation (Bailey & Lopez de Prado), per bar: None on versions before it was kept.
    sharpe_per_period: float | None = None
    n_periods: int | None = None
    skew: float | None = None
    kurtosis: float | None = None  # raw (Pearson): 3 for normal returns
    n_trials: int | None = None  # every configuration tried: Optuna trials, signal/sizing grids
    trials_sharpe_var: float | None = None  # variance of the trials' per-bar Sharpes
    dsr: float | None = None  # P(true Sharpe > the best of n_trials unskilled tries)
    min_trl: float | None = None  # bars of track record needed for PSR(0) at 95%


class BacktestRun(Extra):
    """A `backtest` version's lineage facts: its statistics, read by risk and the summary."""

    stats: BacktestStats = BacktestStats()
    kills: list[dict[str, Any]] = []  # kill-switch trips on the path: open_time, reason, equity
    rejections: dict[str, int] = {}  # orders the venue would reject, by reason
    trials: dict[str, int] = {}  # the configurations behind n_trials, by where they were tried


class FoldMetrics(Extra):
    """One fold's test metrics; which are set depends on train.target (None: not computed
    for this target, or undefined on the fold: `quantlab.metrics` returns None then)."""

    model: str = "lightgbm"  # the booster kind; versions before train.models were all LightGBM
    fold: int
    auc: float | None = None  # binary
    macro_f1: float | None = None  # 3-class
    logloss: float | None = None  # binary and 3-class
    accuracy: float | None = None  # binary and 3-class
    rmse: float | None = None  # regression
    ic: float | None = None  # every target: the score against the forward return
    rank_ic: float | None = None
    hit_rate: float | None = None
    train_rows: int
    test_rows: int
    trials: int | None = None  # the Optuna trials this fold's tuning ran; None before it was kept


class TrainingRun(Extra):
    """A `predictions` version's training run: the MLflow (parent) run, its seed, its folds'
    metrics, how many configurations the tuning tried in all and where each trial's record
    (parameters, value, validation Sharpe) is: `runs:/<run id>/optuna/trials.csv`. None on
    versions before it was kept."""

    mlflow_run_id: str | None = None
    mlflow_experiment: str | None = None
    seed: int | None = None
    trials: int | None = None
    trials_artifact: str | None = None
    trial_sharpes: list[float | None] | None = None  # annualised, per trial; None before kept
    fold_metrics: list[FoldMetrics] = []


class ShapStability(Extra):
    """How one model's (and output's) SHAP importances agree across the walk-forward folds."""

    model: str
    output: int = 0
    folds: int
    top_k: int
    rank_corr_median: float | None = None  # pairwise Spearman of the folds' mean |SHAP|
    rank_corr_min: float | None = None
    topk_jaccard_median: float | None = None  # pairwise overlap of the folds' top-k features
    topk_jaccard_min: float | None = None
    sign_flips: int = 0  # features whose mean SHAP is > 0 in one fold and < 0 in another


class ExplainRun(Extra):
    """A `feature_importance` version's facts: the MLflow run holding its plots and tables,
    and the stability of its importances across folds."""

    mlflow_run_id: str | None = None
    stability: list[ShapStability] = []
    flipped: list[str] = []  # "model/output/feature" of each sign flip


class RiskRun(Extra):
    """A `targets` version's sizing: the policy, what it sized, and how calibrated the
    class probabilities were (Brier score of prob_up per fold; the reliability table is the
    `calibration` dataset written beside it; empty for a regression model)."""

    policy: str = ""
    rows: int = 0
    oof_rows: int = 0  # rows of out-of-fold bars (fold >= 0); the rest are the newest bars
    newest_open_time: str | None = None
    brier: dict[str, float] = {}  # fold -> Brier score of prob_up against the outcome
    base_rate: dict[str, float] = {}  # fold -> share of up outcomes (Brier of a constant guess)
    # Written by paper_trading's `signals` (quantlab.execution.signals): whose scores these are.
    champion: str | None = None  # "<model> v<version>"
    champion_run_id: str | None = None
    predictions: str | None = None  # the champion's own predictions version
