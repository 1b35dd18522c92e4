"""Features a source cannot feed: those reading a kline column the source does not have.

freqtrade keeps OHLCV only, so its klines hold quote volume, trade count and taker volumes
null (`quantlab.schema.SOURCE_OPTIONAL`). A feature reading one of them (`vwap_dist_24`,
`taker_buy_ratio_24`, `trades_z_24`, ...) is left out of the feature set for such a
universe, and so is anything built on it (its higher-timeframe copies, its cross-sectional
rank or z-score, its rolling normalisation), rather than computed from nothing. Which
columns a feature reads comes from its polars expression (and its cached intermediates),
not from a hand-kept list.
"""

from __future__ import annotations

from collections.abc import Collection

from quantlab.config import FeaturesConfig
from quantlab.features._registry import Feature, resolve
from quantlab.schema import SOURCE_OPTIONAL


def optional_reads(feature: Feature) -> tuple[str, ...]:
    """The `SOURCE_OPTIONAL` columns `feature` reads, in that order."""
    roots = set(feature.expr.meta.root_names())
    for expr in feature.deps.values():
        roots |= set(expr.meta.root_names())
    return tuple(c for c in SOURCE_OPTIONAL if c in roots)


def leave_out(
    cfg: FeaturesConfig, absent: Collection[str]
) -> tuple[FeaturesConfig, dict[str, list[str]]]:
    """`cfg` without the features that read a column in `absent`, and what was left out:
    output column -> the absent columns behind it (directly, or through the feature it
    ranks, z-scores or normalises). `cfg` comes back unchanged when nothing is absent."""
    if not absent:
        return cfg, {}
    missing = set(absent)

    def lacks(name: str) -> list[str]:
        return [c for c in optional_reads(resolve(name, cfg)) if c in missing]

    out: dict[str, list[str]] = {}
    columns = []
    for name in cfg.columns:
        if why := lacks(name):
            out[name] = why
        else:
            columns.append(name)
    timeframes: dict[str, tuple[str, ...]] = {}
    for tf, names in cfg.timeframes.items():
        kept = []
        for name in names:
            if why := lacks(name):
                out[f"{name}_{tf}"] = why
            else:
                kept.append(name)
        timeframes[tf] = tuple(kept)
    cs, norm = cfg.cross_section, cfg.normalize
    # What is built on a left-out feature goes with it (cross_section_names' spelling).
    for prefix, refs in (("cs_rank_", cs.rank), ("cs_z_", cs.zscore)):
        for ref in refs:
            if ref in out:
                out[f"{prefix}{ref}"] = out[ref]
    for ref in norm.columns:
        if ref in out:
            out[f"{ref}_rz{norm.window}"] = out[ref]
    rank = tuple(n for n in cs.rank if n not in out)
    zscore = tuple(n for n in cs.zscore if n not in out)
    normalized = tuple(n for n in norm.columns if n not in out)
    reduced = cfg.model_copy(
        update={
            "columns": tuple(columns),
            "timeframes": timeframes,
            "cross_section": cs.model_copy(update={"rank": rank, "zscore": zscore}),
            "normalize": norm.model_copy(update={"columns": normalized}),
        }
    )
    return reduced, out
