"""Take-profit and stop-loss scaled by recent volatility, per run of one direction.

A run is a stretch of bars of one symbol with the same nonzero direction; it is decided at
the close of its first bar t0 and entered at the next bar's open (open[t0 + 1]). At the close
of bar t > t0 the trade has been held h = t - t0 bars; with sigma the per-bar EWMA sigma at t0,
it takes profit when direction x (close[t] / entry - 1) >= take_profit x sigma x sqrt(h), and
stops out when it is <= -stop_loss x sigma x sqrt(h). From that close on the target is flat
until the direction changes (a new run). Everything at t uses bars up to t only.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from numba import njit

NO_EXIT, TAKE_PROFIT, STOP_LOSS = 0, 1, 2


@njit(cache=True)
def _exit_codes(
    starts: np.ndarray,
    direction: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    sigma: np.ndarray,
    take_profit: float,
    stop_loss: float,
) -> np.ndarray:
    out = np.zeros(len(direction), dtype=np.int8)
    for g in range(len(starts) - 1):
        run_dir = 0.0
        t0 = -1
        entry = math.nan
        sig = math.nan
        exited = 0
        for k in range(starts[g], starts[g + 1]):
            d = direction[k]
            if d != run_dir or t0 < 0:
                run_dir, t0, entry, sig, exited = d, k, math.nan, sigma[k], 0
                continue
            if d == 0.0:
                continue
            if exited == 0:
                if k == t0 + 1:
                    entry = open_[k]
                if not (math.isnan(entry) or math.isnan(sig)) and entry > 0.0:
                    width = sig * math.sqrt(k - t0)
                    move = d * (close[k] / entry - 1.0)
                    if not math.isnan(take_profit) and move >= take_profit * width:
                        exited = TAKE_PROFIT
                    elif not math.isnan(stop_loss) and move <= -stop_loss * width:
                        exited = STOP_LOSS
            out[k] = exited
    return out


def exit_codes(
    frame: pl.DataFrame, take_profit: float | None, stop_loss: float | None
) -> pl.Series:
    """`exit` per row of `frame` (symbol, open_time, direction, open, close, sigma; sorted
    by symbol, open_time): 0 holding or flat, 1 after a take-profit, 2 after a stop-loss."""
    if take_profit is None and stop_loss is None:
        return pl.Series("exit", np.zeros(frame.height, dtype=np.int8))
    starts = np.flatnonzero(
        frame["symbol"].ne_missing(frame["symbol"].shift(1)).fill_null(True).to_numpy()
    )
    starts = np.append(starts, frame.height).astype(np.int64)

    def arr(name: str) -> np.ndarray:
        return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()

    codes = _exit_codes(
        starts,
        arr("direction"),
        arr("open"),
        arr("close"),
        arr("sigma"),
        math.nan if take_profit is None else take_profit,
        math.nan if stop_loss is None else stop_loss,
    )
    return pl.Series("exit", codes)
