"""The portfolio domain shared by the backtest, risk and paper trading: pure functions, no I/O.

`signals`: scores to directions; `sizing`: directions to target weights; `types`: `Side`.
"""

from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.portfolio.sizing import size_targets
from quantlab.portfolio.types import Side

__all__ = ["Side", "directions_from_scores", "size_targets", "smooth_scores"]
