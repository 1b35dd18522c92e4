"""Backtest stage: target positions on bars -> equity, held weights, filled orders, stats, report."""

from quantlab.backtest.engine import BacktestResult, run_backtest, signals_to_positions
from quantlab.backtest.html import render_report
from quantlab.backtest.stage import run

__all__ = ["BacktestResult", "render_report", "run", "run_backtest", "signals_to_positions"]
