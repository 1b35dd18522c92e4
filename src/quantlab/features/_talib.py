"""TA-Lib's C functions as polars expressions, for the indicators TA-Lib has.

`build_features` evaluates each expression over one symbol's time-sorted bars, so
every call hands TA-Lib one contiguous float64 array per symbol, as TA-Lib wants,
and the symbols still run in parallel (TA-Lib releases the GIL). TA-Lib's warm-up
NaNs come back as nulls. TA-Lib reads process-wide settings (unstable periods,
Metastock compatibility) that change both values and warm-up, so a call refuses
anything but the defaults the registry's warm-ups are written for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import talib

from quantlab.errors import ConfigError

# The functions whose TA-Lib "unstable period" the indicators here depend on (MACD's is EMA's).
_UNSTABLE = ("ADX", "ATR", "DX", "EMA", "MINUS_DI", "MINUS_DM", "PLUS_DI", "PLUS_DM", "RSI")


def check_talib_defaults() -> None:
    """ConfigError unless TA-Lib runs with its default settings, which the warm-ups assume."""
    changed = [f for f in _UNSTABLE if talib.get_unstable_period(f) != 0]
    if changed or talib.get_compatibility() != 0:
        raise ConfigError(
            f"TA-Lib's global settings were changed (unstable period of {changed}, "
            f"compatibility {talib.get_compatibility()}); features assume the defaults: "
            "call talib.set_unstable_period('ALL', 0) and talib.set_compatibility(0) first"
        )


def _array(s: pl.Series) -> np.ndarray:
    # Zero-copy for a float column without nulls; a null becomes NaN, which TA-Lib skips
    # while it leads and carries forward after.
    return s.cast(pl.Float64).to_numpy()


def _call(name: str, cols: Sequence[pl.Series], params: dict[str, int | float]) -> object:
    check_talib_defaults()
    return getattr(talib, name)(*(_array(c) for c in cols), **params)


def _series(name: str, values: np.ndarray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)


def ta(name: str, *inputs: pl.Expr, **params: int | float) -> pl.Expr:
    """TA-Lib function `name` (one output) over `inputs`, e.g. `ta("RSI", close, timeperiod=14)`."""

    def run(cols: Sequence[pl.Series]) -> pl.Series:
        return _series("", _call(name, cols, params))  # type: ignore[arg-type]

    return pl.map_batches(list(inputs), run, return_dtype=pl.Float64)


def ta_struct(
    name: str, inputs: Sequence[pl.Expr], fields: Sequence[str], **params: int | float
) -> pl.Expr:
    """TA-Lib function `name` with several outputs, as one struct with `fields` in its order."""

    def run(cols: Sequence[pl.Series]) -> pl.Series:
        outs = _call(name, cols, params)
        return pl.DataFrame(
            [_series(f, out) for f, out in zip(fields, outs, strict=True)]  # type: ignore[call-overload]
        ).to_struct()

    dtype = pl.Struct({f: pl.Float64 for f in fields})
    return pl.map_batches(list(inputs), run, return_dtype=dtype)
