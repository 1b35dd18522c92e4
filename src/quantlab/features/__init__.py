"""Stage `features`: a leakage-free factor library on polars, per symbol and across symbols.

Input datasets: `klines` (at the version `klines_checks` passed) and, for
perpetuals, optionally `funding_rates`. Output: `features`, keyed by `symbol,
open_time`. A value at open_time t uses only what was known at that bar's close
(higher-timeframe bars only once closed, funding only once paid); warm-up rows
are null. Which features a run builds comes from the `features:` section of
`configs/`; `quantlab features list` prints every registered one.
"""

from quantlab.features._registry import REGISTRY, Feature, library, resolve
from quantlab.features.build import build_features, feature_names, plan_features
from quantlab.features.regimes import REGIMES, regime_names
from quantlab.features.stage import run

__all__ = [
    "REGIMES",
    "REGISTRY",
    "Feature",
    "build_features",
    "feature_names",
    "library",
    "plan_features",
    "regime_names",
    "resolve",
    "run",
]
