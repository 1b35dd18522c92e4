"""Stage `risk`: target weights for every out-of-fold bar and the newest bars.

Input datasets: `predictions`, `klines` (a version that passed the gate), `labels`.
Output: `targets`, keyed by `symbol, open_time`: the portfolio weight to hold from the
next bar on, and `calibration` (prob_up's reliability per fold). Sizing is
`portfolio.sizing.size_targets`; `risk.limits` checks the caps held.
"""

from quantlab.risk.limits import cap_breaches
from quantlab.risk.stage import run

__all__ = ["cap_breaches", "run"]
