"""optuna-integration's pruning callbacks, told the metric by the booster itself.

The metric a fold is pruned on is the one the booster evaluates on its valid slice: whatever
its params say (LightGBM `metric`, XGBoost `eval_metric`), so a multi-class or regression
target prunes on its own loss without this module knowing the target. Reports go to the
study every `report_interval` rounds: each report is a write to the study's database.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna_integration import LightGBMPruningCallback, XGBoostPruningCallback

from quantlab.errors import ConfigError

# Metrics where higher is better; the studies minimise a loss, so pruning on one is a bug.
_XGB_MAXIMISED = ("auc", "aucpr", "map", "ndcg", "pre")


class LightGBMPruning(LightGBMPruningCallback):
    """LightGBMPruningCallback on the first metric LightGBM evaluates on the valid set (the
    booster's `metric` param, in its order; the one its early stopping also watches first)."""

    def __init__(self, trial: optuna.Trial, report_interval: int = 1) -> None:
        super().__init__(trial, metric="", report_interval=report_interval)

    def __call__(self, env: Any) -> None:
        if not self._metric:
            results = [r for r in env.evaluation_result_list or [] if r[0] != "training"]
            if not results:
                raise ConfigError(
                    "LightGBM evaluated no metric on the valid set; set a `metric` in the "
                    "booster's params (quantlab.train.models)"
                )
            self._valid_name, metric = results[0][0], results[0][1]
            self._metric = metric.removeprefix("valid ")
        super().__call__(env)


class XGBoostPruning(XGBoostPruningCallback):
    """XGBoostPruningCallback on the last metric of the last evals set: the booster's
    `eval_metric` that XGBoost's early stopping watches. It reports every `report_interval`
    epochs (the upstream callback reports every epoch)."""

    def __init__(self, trial: optuna.Trial, report_interval: int = 1) -> None:
        super().__init__(trial, observation_key="")
        self._interval = report_interval

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        if not self._observation_key:
            if not evals_log:
                raise ConfigError("XGBoost evaluated no metric on the valid set; pass evals")
            dataset = list(evals_log)[-1]
            metric = list(evals_log[dataset])[-1]
            if metric.split("@")[0] in _XGB_MAXIMISED:
                raise ConfigError(
                    f"XGBoost's eval_metric {metric!r} is maximised, but the study minimises a "
                    "loss; make a loss (logloss, mlogloss, rmse) the last eval_metric"
                )
            self._observation_key = f"{dataset}-{metric}"
        if (epoch + 1) % self._interval:
            return False
        return super().after_iteration(model, epoch, evals_log)


def pruning_callback(kind: str, trial: optuna.Trial, report_interval: int = 1) -> Any:
    """The pruning callback for a `kind` (a `train.models` entry) fit."""
    if kind == "lightgbm":
        return LightGBMPruning(trial, report_interval)
    if kind == "xgboost":
        return XGBoostPruning(trial, report_interval)
    raise ConfigError(f"no pruning callback for model kind {kind!r}; use lightgbm or xgboost")
