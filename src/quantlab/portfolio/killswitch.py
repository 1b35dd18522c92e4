"""The kill-switch on an equity path: it acts as the path unfolds, never on the final drawdown.

`kill_step` is the rule at one bar close, a numba function the backtest engine calls in its
loop; `kill_path` replays the same rule, with the cool-down, over a recorded equity path (the
paper bridge's live equity, a check of the engine). The caller keeps the state:
- `peak`: the highest equity since the start or the last reset (the current equity counts);
- `day_start`: the equity at the close of the previous UTC day's last bar (the first equity
  on the path's first day);
- after a trip at the close of bar i, the targets decided at closes i .. i + cooldown - 1 are
  flat (so `kill_cooldown_bars` bars are held flat), and at the close of bar i + cooldown the
  peak and the day's start are reset to the equity then and the rule applies again.
Disable one trigger by passing math.inf (`kill_path` does for a null config key).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numba import njit

from quantlab.config import RiskConfig
from quantlab.schema import require_columns

CLEAR, DRAWDOWN, DAILY_LOSS = 0, 1, 2
REASONS = {CLEAR: "", DRAWDOWN: "drawdown", DAILY_LOSS: "daily_loss"}


@njit(cache=True)
def kill_step(
    equity: float, peak: float, day_start: float, kill_drawdown: float, kill_daily_loss: float
) -> int:
    """0 (clear), 1 (equity is `kill_drawdown` or more below its peak) or 2 (it lost
    `kill_daily_loss` or more since the day's start). The drawdown trip wins a tie."""
    top = max(peak, equity)
    if top > 0.0 and equity <= top * (1.0 - kill_drawdown):
        return DRAWDOWN
    if day_start > 0.0 and equity <= day_start * (1.0 - kill_daily_loss):
        return DAILY_LOSS
    return CLEAR


@njit(cache=True)
def _kill_path(
    equity: np.ndarray,
    day: np.ndarray,
    kill_drawdown: float,
    kill_daily_loss: float,
    cooldown: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(equity)
    killed = np.zeros(n, dtype=np.bool_)
    reason = np.zeros(n, dtype=np.int8)
    if n == 0:
        return killed, reason
    peak = equity[0]
    day_start = equity[0]
    left = 0  # bars of cool-down still to hold flat, counting this one
    for i in range(n):
        if i > 0 and day[i] != day[i - 1]:
            day_start = equity[i - 1]
        if left > 0:
            killed[i] = True
            left -= 1
            continue
        if i > 0 and killed[i - 1]:  # the cool-down is over: start afresh from here
            peak = equity[i]
            day_start = equity[i]
        peak = max(peak, equity[i])
        code = kill_step(equity[i], peak, day_start, kill_drawdown, kill_daily_loss)
        if code != CLEAR:
            killed[i] = True
            reason[i] = code
            left = cooldown - 1
    return killed, reason


def kill_path(equity: pl.DataFrame, cfg: RiskConfig) -> pl.DataFrame:
    """`open_time, killed, reason` per row of `equity` (open_time, equity at that bar's close).

    `killed`: the target decided at that close is flat; `reason`: "drawdown" or "daily_loss"
    on the bar that tripped, "" otherwise. Each row depends on the path up to it only.
    """
    require_columns(equity, ("open_time", "equity"), "equity")
    path = equity.select("open_time", pl.col("equity").cast(pl.Float64)).sort("open_time")
    day = path["open_time"].dt.convert_time_zone("UTC").dt.date().cast(pl.Int32).to_numpy()
    killed, reason = _kill_path(
        path["equity"].to_numpy(),
        day,
        math.inf if cfg.kill_drawdown is None else cfg.kill_drawdown,
        math.inf if cfg.kill_daily_loss is None else cfg.kill_daily_loss,
        cfg.kill_cooldown_bars,
    )
    return path.select("open_time").with_columns(
        pl.Series("killed", killed),
        pl.Series("reason", [REASONS[int(c)] for c in reason], dtype=pl.String),
    )
