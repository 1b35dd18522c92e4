"""Stage `risk`: volatility-targeted position sizes with caps and a drawdown kill-switch.

Input datasets: `predictions`, `klines` (a version that passed the gate), `backtest`.
Output: `targets`, keyed by `symbol, open_time`.
"""

from quantlab.risk.stage import run, size_positions

__all__ = ["run", "size_positions"]
