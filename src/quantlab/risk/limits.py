"""The risk limits a portfolio must stay within: the drawdown kill-switch. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from quantlab.config import RiskConfig


@dataclass(frozen=True)
class KillDecision:
    """Whether every target is forced flat, and why (empty when not); stored in the
    `targets` lineage as the catalog's `KillSwitch` facts."""

    killed: bool
    reason: str


def check_kill_switch(max_drawdown: float | None, cfg: RiskConfig) -> KillDecision:
    """Trip the kill-switch when the strategy's backtest drawdown reaches `cfg.kill_drawdown`.

    `max_drawdown` is the backtest's (negative, or None when undefined).
    """
    drawdown = abs(max_drawdown or 0.0)
    if drawdown >= cfg.kill_drawdown:
        return KillDecision(
            True, f"backtest max drawdown {drawdown:.1%} >= {cfg.kill_drawdown:.0%}"
        )
    return KillDecision(False, "")
