"""The portfolio domain shared by the backtest, risk and paper trading: pure functions, no I/O.

`signals`: scores to directions; `sizing`: directions to target weights; `types`: `Side`,
`Order`, `Fill`, `Rejection`, `RejectReason`; `venue`: exchange filters and rounding; `costs`:
fees and slippage; `funding`: USD-M funding events; `engine_nb`: the backtest's numba core.
"""

from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.portfolio.sizing import size_targets
from quantlab.portfolio.types import Fill, Order, Rejection, RejectReason, Side

__all__ = [
    "Fill",
    "Order",
    "RejectReason",
    "Rejection",
    "Side",
    "directions_from_scores",
    "size_targets",
    "smooth_scores",
]
