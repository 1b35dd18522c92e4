"""The path kill-switch's step: trips on the drawdown from the peak or the loss since the UTC day began.

A temporary copy of lane "sizing"'s `kill_step` (the integrator keeps one); the engine keeps
`peak`, `day_start` and the cool-down and calls this at every bar close.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True)
def kill_step(
    equity: float, peak: float, day_start: float, kill_drawdown: float, kill_daily_loss: float
) -> int:
    """0: clear; 1: drawdown from `peak` reached `kill_drawdown`; 2: the day's loss reached
    `kill_daily_loss` (both fractions; inf disables one)."""
    if equity <= peak * (1.0 - kill_drawdown):
        return 1
    if equity <= day_start * (1.0 - kill_daily_loss):
        return 2
    return 0
