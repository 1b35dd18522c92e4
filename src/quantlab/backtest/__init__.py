"""Stage `backtest`: the risk stage's targets traded as the venue would trade them.

Input datasets: `targets`, `predictions`, `klines`, `exchange_info` (gated) and on USD-M
`funding_rates`. Outputs: `backtest`, `backtest_fills`, `backtest_funding`,
`backtest_rejections`, and a tearsheet beside `backtest`. The stage and the engine are
imported on first use, so `quantlab.backtest.lookahead` does not pull in vectorbt or numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quantlab.backtest.engine import BacktestResult, simulate
    from quantlab.backtest.stage import run

__all__ = ["BacktestResult", "run", "simulate"]
_HOME = {"BacktestResult": "engine", "simulate": "engine", "run": "stage"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'quantlab.backtest' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"quantlab.backtest.{_HOME[name]}"), name)
