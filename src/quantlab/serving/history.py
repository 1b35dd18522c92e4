"""How many base bars the newest bar's features need: the minimum history, from the plan.

A feature at row i of one symbol's bars is non-null once i reaches its registry warm-up. A
feature built on rolling windows then equals the whole table's; a recursive one (an EMA, or
Wilder's smoothing: RSI, ATR, ADX, MACD, ...) depends on every earlier bar through its seed,
whose weight decays as (1 - alpha)^k. It is run for `settle` more bars, until that weight
is below `TOLERANCE`, so the tail's newest value equals the whole table's to about that
relative error (tests/serving/test_tail.py measures it on the shipped data).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from quantlab.features import REGISTRY, Feature
from quantlab.features.build import FeaturePlan
from quantlab.features.timeframes import check_timeframe

log = logging.getLogger(__name__)

# The seed's weight left in a recursive indicator's newest value. 1e-9 keeps a served input
# within ~1e-9 (relative) of the training's: far inside any split threshold's resolution.
TOLERANCE = 1e-9


def settle(alpha: float, tol: float = TOLERANCE) -> int:
    """Bars until a filter that keeps (1 - alpha) of its state per bar forgets its seed."""
    return math.ceil(math.log(tol) / math.log1p(-alpha))


def _ema(n: int) -> int:
    return settle(2.0 / (n + 1))  # TA-Lib EMA's k


def _wilder(n: int) -> int:
    return settle(1.0 / n)  # Wilder's smoothing (RSI, ATR, +-DM)


def _macd(fast: int, slow: int, sig: int) -> int:
    return _ema(slow) + _ema(sig)  # both EMAs of the line, then the signal EMA on top of it


def _keltner(n: int) -> int:
    return max(_ema(n), _wilder(n))


def _regime(adx_window: int, atr_window: int, **_: float) -> int:
    # ADX smooths DX, itself made of smoothed moves: two Wilder stages in a row.
    return max(2 * _wilder(adx_window), _wilder(atr_window))


# Bars beyond the warm-up a recursive indicator runs before its seed no longer shows, by
# registry template; None: it never forgets (a running total since the first bar), so only
# the whole history gives the table's value.
SETTLE: dict[str, Callable[..., int | None]] = {
    "ema_{n}": _ema,
    "ema_dist_{n}": _ema,
    "rsi_{n}": _wilder,
    "atr_{n}": _wilder,
    "natr_{n}": _wilder,
    "plus_di_{n}": _wilder,
    "minus_di_{n}": _wilder,
    "adx_{n}": lambda n: 2 * _wilder(n),
    "kc_pos_{n}": _keltner,
    "kc_width_{n}": _keltner,
    "bb_kc_ratio_{n}": _keltner,
    "macd_{fast}_{slow}_{sig}": _macd,
    "macd_signal_{fast}_{slow}_{sig}": _macd,
    "macd_hist_{fast}_{slow}_{sig}": _macd,
    "macd_pct_{fast}_{slow}_{sig}": _macd,
    "macd_hist_pct_{fast}_{slow}_{sig}": _macd,
    "regime": _regime,
    "obv": lambda: None,
}
# Indicators whose value reads a fixed window of bars: the warm-up is all they need.
FINITE = frozenset(
    {
        "sma_{n}",
        "sma_dist_{n}",
        "bb_width_{n}",
        "bb_pctb_{n}",
        "rvol_{n}",
        "parkinson_{n}",
        "garman_klass_{n}",
        "stoch_k_{k}_{slow}_{d}",
        "stoch_d_{k}_{slow}_{d}",
        "willr_{n}",
        "roc_{n}",
        "ret_{n}",
        "logret_{n}",
        "range_hl",
        "close_pos",
        "body",
        "obv_flow_{n}",
        "mfi_{n}",
        "volume_z_{n}",
        "vwap_dist_{n}",
        "taker_buy_ratio",
        "taker_buy_ratio_{n}",
        "trades_z_{n}",
        # Funding features count funding events, which serving passes whole (see tail).
        "funding_rate",
        "funding_mean_{n}",
        "funding_z_{n}",
    }
)


def template_of(name: str) -> str | None:
    """The registry template `name` is an instance of (a resolved Feature's registry is loaded)."""
    for template, ind in REGISTRY.items():
        if ind.pattern.match(name):
            return template
    return None


def rows_needed(feature: Feature) -> int | None:
    """Rows of its own bars `feature`'s newest value needs (None: all of them)."""
    template = template_of(feature.name)
    if template in SETTLE:
        extra = SETTLE[template](**feature.params)
        return None if extra is None else feature.warmup + extra + 1
    if template in FINITE:
        return feature.warmup + 1
    # A new indicator nobody classified: correct before fast, so the whole history.
    log.warning("serving: %s's memory is unknown; features read the whole history", feature.name)
    return None


def history_rows(plan: FeaturePlan, interval: str) -> int | None:
    """Base bars per symbol the newest bar's every per-symbol feature needs (None: all).

    A higher-timeframe feature needs its rows in `tf` bars, plus the `tf` bar the newest base
    bar belongs to (not closed yet) and one the resampling may drop as partly seen; a
    normalized column needs its column settled over the whole window before the newest bar.
    Cross-section features read the same rows of every symbol at the newest timestamp.
    """
    rows: dict[str, int | None] = {f.name: rows_needed(f) for f in plan.base}
    for tf, feats in plan.timeframes.items():
        ratio = check_timeframe(tf, interval)
        for f in feats:
            need = rows_needed(f)
            rows[f"{f.name}_{tf}"] = None if need is None else (need + 2) * ratio - 1
    window = plan.cfg.normalize.window
    for c in plan.cfg.normalize.columns:
        need = rows[c]
        rows[f"{c}_rz{window}"] = None if need is None else need + window - 1
    if any(v is None for v in rows.values()):
        return None
    return max((v for v in rows.values() if v is not None), default=1)
