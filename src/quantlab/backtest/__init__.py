"""Stage `backtest`: directions on bars -> equity, target weights held, fills, stats, HTML report.

Input datasets: `predictions`, `klines` (a version that passed the gate). Output: `backtest`.
"""

from quantlab.backtest.engine import BacktestResult, simulate
from quantlab.backtest.html import render_report
from quantlab.backtest.stage import run

__all__ = ["BacktestResult", "render_report", "run", "simulate"]
