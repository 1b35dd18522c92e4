"""Stage `risk`: volatility-targeted target weights with caps and a drawdown kill-switch.

Input datasets: `predictions`, `klines` (a version that passed the gate), `backtest`.
Output: `targets`, keyed by `symbol, open_time`: the portfolio weight to hold from the
next bar on. Sizing is `portfolio.sizing.size_targets`; the limits are `risk.limits`.
"""

from quantlab.risk.limits import KillDecision, check_kill_switch
from quantlab.risk.stage import run

__all__ = ["KillDecision", "check_kill_switch", "run"]
