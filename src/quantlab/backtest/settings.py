"""The engine's settings that come from other config sections: the path kill-switch (risk.kill_*)."""

from __future__ import annotations

from quantlab.backtest.arrays import KillSettings
from quantlab.config import RiskConfig


def kill_settings(risk: RiskConfig) -> KillSettings:
    """The kill-switch the engine applies on the path, as the risk section configures it."""
    return KillSettings(
        kill_drawdown=risk.kill_drawdown,
        kill_daily_loss=risk.kill_daily_loss,
        kill_cooldown_bars=risk.kill_cooldown_bars,
    )
