"""Backtest stage: target positions on bars -> equity, held weights, filled orders, stats, report."""

from quantlab.backtest.engine import BacktestResult, run_backtest, signals_to_positions
from quantlab.backtest.report import render_report

__all__ = ["BacktestResult", "render_report", "run_backtest", "signals_to_positions"]
