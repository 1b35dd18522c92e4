"""The model lifecycle's config: the promotion gate, retraining schedules and modes, the live
accuracy tracker and its retrain triggers, the regime model and serving (`quantlab.lifecycle`,
`quantlab.regime`, `quantlab.serving`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quantlab.config.data import _Model

# Metrics the gate and the live tracker compute from out-of-sample predictions and labels.
# Higher is better except logloss and brier.
GateMetric = Literal["auc", "logloss", "accuracy", "brier", "ic", "rank_ic", "hit_rate", "macro_f1"]
LOWER_IS_BETTER = frozenset({"logloss", "brier"})


class GateConfig(_Model):
    """When a challenger replaces the champion: all of these on the same out-of-sample rows."""

    metric: GateMetric = Field(
        default="auc", description="computed on the rows both models scored out of sample"
    )
    margin: float = Field(
        default=0.0, ge=0, description="the challenger must beat the champion by at least this"
    )
    min_common_rows: int = Field(
        default=168,
        ge=1,
        description="out-of-sample rows both scored; fewer: no promotion (168: the week of "
        "hourly bars an incremental update holds out per symbol)",
    )
    dsr_floor: float | None = Field(
        default=0.0,
        ge=0,
        le=1,
        description="the backtest's deflated Sharpe must reach this once a backtest exists; null: off",
    )
    shap_stability_floor: float | None = Field(
        default=0.0,
        ge=-1,
        le=1,
        description="median pairwise rank correlation of the folds' mean |SHAP|; null: off",
    )


class SchedulesConfig(_Model):
    """Cron expressions in `timezone` (the regime seed: 08:00 and 20:00 HKT, Sunday 03:00)."""

    timezone: str = "Asia/Hong_Kong"
    incremental: str | None = "0 8,20 * * *"
    full: str | None = "0 3 * * 0"
    monitor: str | None = "30 * * * *"


class IncrementalConfig(_Model):
    """Continue the champion on the bars labelled since it was trained."""

    method: Literal["init_model", "refit"] = Field(
        default="init_model",
        description="init_model: add trees fitted on the new bars (LightGBM init_model, XGBoost "
        "xgb_model) | refit: keep the trees, blend their leaf values (decay_rate)",
    )
    rounds: int = Field(default=50, ge=1, description="init_model: trees added at most")
    decay_rate: float = Field(default=0.9, ge=0, le=1, description="refit: weight of old leaves")
    holdout_bars: int = Field(
        default=168,
        ge=1,
        description="the newest labelled bars, held out of the update and scored by both "
        "the update and the champion (the gate's common rows)",
    )
    min_new_bars: int = Field(
        default=24, ge=1, description="fewer new labelled bars per symbol: nothing to learn"
    )


class TriggersConfig(_Model):
    """What starts a retrain; every decision is logged with its reason."""

    full_below: float | None = Field(
        default=0.5,
        description="the champion's live `metric` over `window_days` below this: full retrain",
    )
    metric: GateMetric = "accuracy"
    window_days: int = Field(default=7, ge=1)
    min_rows: int = Field(default=48, ge=1, description="fewer scored rows: no accuracy trigger")
    full_after_bars: int | None = Field(
        default=720, ge=1, description="new labelled bars since the last full retrain"
    )
    incremental_after_bars: int | None = Field(
        default=12, ge=1, description="new labelled bars since the champion was trained"
    )


class TrackerConfig(_Model):
    windows_days: tuple[int, ...] = (7, 14, 30)


class RegimeModelConfig(_Model):
    """The per-symbol classifier of the six regime tags `labels.regime.horizon` bars ahead."""

    enabled: bool = True
    register_as: str = "quantlab-regime"  # one registered model per symbol: <register_as>-<SYMBOL>
    trials: int = Field(default=4, ge=1, description="Optuna trials per symbol and fold")
    num_boost_round: int = Field(default=150, ge=1)
    metric: GateMetric = "logloss"  # what its gate compares


class ServingConfig(_Model):
    alias_ttl_s: float = Field(
        default=0.0,
        ge=0,
        description="how long a process trusts the champion alias it read; 0: read it each call",
    )


class LifecycleConfig(_Model):
    gate: GateConfig = GateConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    incremental: IncrementalConfig = IncrementalConfig()
    tracker: TrackerConfig = TrackerConfig()
    triggers: TriggersConfig = TriggersConfig()
    regime: RegimeModelConfig = RegimeModelConfig()
    serving: ServingConfig = ServingConfig()

    @model_validator(mode="after")
    def _regime_gate(self) -> LifecycleConfig:
        if self.regime.metric not in ("logloss", "accuracy", "macro_f1", "brier"):
            raise ValueError(
                f"lifecycle.regime.metric {self.regime.metric!r} does not score a six-class "
                "model; use logloss, accuracy, macro_f1 or brier"
            )
        return self
