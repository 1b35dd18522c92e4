"""Typed, frozen configuration loaded once from YAML in `configs/`.

Unknown keys are errors (`extra="forbid"`), so a typo fails loudly instead of
silently falling back to a default. `${VAR}` and `${VAR:-default}` in string
values are expanded from the environment, which is where secrets come from.
"""

from quantlab.config.data import (
    SYMBOL,
    VALIDATE_CHECKS,
    ExchangeConfig,
    PathsConfig,
    UniverseConfig,
    ValidateConfig,
    check_symbol,
)
from quantlab.config.lifecycle import LifecycleConfig
from quantlab.config.loader import (
    DEFAULT_CONFIG,
    PROJECT_ROOT,
    home,
    load_config,
    load_file,
    resolve_path,
)
from quantlab.config.model import Config, config_hash, config_slice, slice_hash
from quantlab.config.monitoring import MonitoringConfig
from quantlab.config.paper import (
    BinanceVenueConfig,
    PaperConfig,
    PaperLimitsConfig,
    VirtualConfig,
)
from quantlab.config.portfolio import BacktestConfig, RiskConfig, SignalConfig
from quantlab.config.research import (
    BarrierConfig,
    CrossSectionConfig,
    EvaluateConfig,
    FeaturesConfig,
    LabelsConfig,
    NormalizeConfig,
    RegimeConfig,
    RegimeLabelConfig,
    TrackingConfig,
    TrainConfig,
)

__all__ = [
    "DEFAULT_CONFIG",
    "PROJECT_ROOT",
    "SYMBOL",
    "VALIDATE_CHECKS",
    "BacktestConfig",
    "BarrierConfig",
    "BinanceVenueConfig",
    "Config",
    "CrossSectionConfig",
    "EvaluateConfig",
    "ExchangeConfig",
    "FeaturesConfig",
    "LabelsConfig",
    "LifecycleConfig",
    "MonitoringConfig",
    "NormalizeConfig",
    "PaperConfig",
    "PaperLimitsConfig",
    "PathsConfig",
    "RegimeConfig",
    "RegimeLabelConfig",
    "RiskConfig",
    "SignalConfig",
    "TrackingConfig",
    "TrainConfig",
    "UniverseConfig",
    "ValidateConfig",
    "VirtualConfig",
    "check_symbol",
    "config_hash",
    "config_slice",
    "home",
    "load_config",
    "load_file",
    "resolve_path",
    "slice_hash",
]
