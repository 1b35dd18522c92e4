"""Stage `regime`: one six-class regime classifier per symbol, walked forward like the main model.

Input datasets: `features`, `labels` (`regime_<h>`, `label_time_<h>`; h = labels.regime.horizon).
Output: `regime_predictions` (out-of-fold probabilities of the six `quantlab.vocab.REGIMES`
per tested bar, and the final model's for the newest bars), each symbol's final model
registered as `<lifecycle.regime.register_as>-<SYMBOL>` (challenger; `promote` judges it).
"""

from quantlab.regime.stage import run
from quantlab.regime.train import RegimeResult, train_regimes, training_frame

__all__ = ["RegimeResult", "run", "train_regimes", "training_frame"]
