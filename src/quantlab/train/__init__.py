"""Stage `train`: purged walk-forward LightGBM and/or XGBoost with Optuna, logged to MLflow.

Input datasets: `features`, `labels`. Output: `predictions` (out-of-fold scores for
every tested bar, plus the final model's scores for the newest bars whose label
is not known yet), with the MLflow run id in its lineage; and `feature_importance`
(each fold's SHAP on its test rows, `quantlab.train.explain`) with the same lineage.
"""

from quantlab.train.models import Fitted, booster
from quantlab.train.splits import Split, fold_table, make_splits
from quantlab.train.stage import run
from quantlab.train.walkforward import WalkForwardResult, walk_forward

__all__ = [
    "Fitted",
    "Split",
    "WalkForwardResult",
    "booster",
    "fold_table",
    "make_splits",
    "run",
    "walk_forward",
]
