"""The risk limits a portfolio must stay within: the drawdown kill-switch. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from quantlab.config import RiskConfig


@dataclass(frozen=True)
class KillSwitch:
    """Whether every target is forced flat, and why (empty when not)."""

    killed: bool
    reason: str


def check_kill_switch(stats: dict[str, float | None], cfg: RiskConfig) -> KillSwitch:
    """Trip the kill-switch when the strategy's backtest drawdown reaches `cfg.kill_drawdown`.

    `stats` are a backtest's summary statistics (`max_drawdown` negative or None).
    """
    drawdown = abs(stats.get("max_drawdown") or 0.0)
    if drawdown >= cfg.kill_drawdown:
        return KillSwitch(True, f"backtest max drawdown {drawdown:.1%} >= {cfg.kill_drawdown:.0%}")
    return KillSwitch(False, "")
