"""The portfolio domain shared by the backtest, risk and paper trading: pure functions, no I/O.

`signals`: scores to directions; `sizing`: directions to target weights; `types`: `Side`,
`Order`, `Fill`, `Rejection`, `RejectReason`; `venue`: exchange filters and rounding; `costs`:
fees and slippage; `funding`: USD-M funding events; `engine_nb`: the backtest's numba core.
The numba-compiled modules load on first use: `signals` or `types` alone (what training's
trial Sharpe and the paper stage read) do not import numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quantlab.portfolio.signals import directions_from_scores, smooth_scores
from quantlab.portfolio.types import Fill, Order, Rejection, RejectReason, Side

if TYPE_CHECKING:
    from quantlab.portfolio.sizing import size_targets

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


def __getattr__(name: str) -> Any:
    if name == "size_targets":
        from quantlab.portfolio.sizing import size_targets

        return size_targets
    raise AttributeError(f"module 'quantlab.portfolio' has no attribute {name!r}")
