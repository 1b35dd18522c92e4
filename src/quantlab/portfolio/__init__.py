"""The portfolio domain shared by the backtest, risk and paper trading: pure functions, no I/O.

`signals`: from model scores to directions.
"""

from quantlab.portfolio.signals import signals_to_positions, smooth_scores

__all__ = ["signals_to_positions", "smooth_scores"]
