"""Building blocks shared by the indicator families.

Every expression runs over one symbol's bars sorted by time, after `with_helpers`
added the row index and the one-bar quantities several indicators reuse. The
indicators TA-Lib has are TA-Lib's own C code (see `_talib`), so they equal it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import polars as pl

from quantlab.features._talib import ta, ta_struct

IDX = pl.col("_i")  # row number within the symbol
PREV_CLOSE = pl.col("_pc")
LOG_RET = pl.col("_lr")  # one-bar log return
HELPERS = ("_i", "_pc", "_lr")

close, high, low, open_ = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("open")
volume = pl.col("volume")


_DEPS: ContextVar[dict[str, pl.Expr] | None] = ContextVar("_DEPS", default=None)


def cached(name: str, expr: pl.Expr) -> pl.Expr:
    """`expr` computed once, as column `name`, before every feature that uses it.

    Indicators share intermediate series (ATR, the smoothed directional movement,
    EMAs); naming them lets each be computed once instead of once per use.
    """
    deps = _DEPS.get()
    if deps is None:
        return expr
    deps.setdefault(name, expr.alias(name))
    return pl.col(name)


@contextmanager
def collect_deps() -> Iterator[dict[str, pl.Expr]]:
    """Record the `cached` intermediates an indicator's expression needs, in dependency order."""
    deps: dict[str, pl.Expr] = {}
    token = _DEPS.set(deps)
    try:
        yield deps
    finally:
        _DEPS.reset(token)


def with_deps(lf: pl.LazyFrame, deps: dict[str, pl.Expr]) -> pl.LazyFrame:
    """Add intermediate columns, in layers so each layer only reads columns made before it."""
    done = set(lf.collect_schema().names())
    pending = dict(deps)
    while pending:
        layer = {n: e for n, e in pending.items() if set(e.meta.root_names()) <= done | {n}}
        if not layer:
            raise RuntimeError(f"intermediate columns {list(pending)} depend on each other")
        lf = lf.with_columns(layer.values())
        done |= set(layer)
        pending = {n: e for n, e in pending.items() if n not in layer}
    return lf


def with_helpers(lf: pl.LazyFrame, exprs: Iterable[pl.Expr] | None = None) -> pl.LazyFrame:
    """Add the helper columns to one symbol's time-sorted bars: those `exprs` use, or all."""
    pc = close.shift(1)
    helpers = {
        "_i": pl.int_range(pl.len(), dtype=pl.Int64),
        "_pc": pc,
        "_lr": (close / pc).log(),
    }
    if exprs is not None:
        used = {name for e in exprs for name in e.meta.root_names()}
        helpers = {k: v for k, v in helpers.items() if k in used}
    return lf.with_columns(v.alias(k) for k, v in helpers.items()) if helpers else lf


def ta_outputs(
    key: str, name: str, inputs: list[pl.Expr], fields: tuple[str, ...], **params: int | float
) -> tuple[pl.Expr, ...]:
    """The outputs of a several-output TA-Lib function, computed once (as `key`) per build."""
    out = cached(key, ta_struct(name, inputs, fields, **params))
    return tuple(out.struct.field(f) for f in fields)


def safe_div(num: pl.Expr, den: pl.Expr, zero: float | None = None) -> pl.Expr:
    """num / den; where den is 0, `zero` (null by default); null where either is null."""
    out = pl.when(den != 0).then(num / den)
    return out.when(den == 0).then(zero) if zero is not None else out


def rolling_z(x: pl.Expr, n: int, key: str | None = None) -> pl.Expr:
    """(x - mean) / std over the last n values (sample std); null while the window fills or is flat.

    With a `key`, x, its mean and its std are each computed once (see `cached`).
    """
    if key is not None:
        x = cached(f"_{key}", x)
    mean, std = x.rolling_mean(n, min_samples=n), x.rolling_std(n, min_samples=n)
    if key is not None:
        mean, std = cached(f"_{key}_mean{n}", mean), cached(f"_{key}_sd{n}", std)
    return safe_div(x - mean, std)


def ema_close(n: int) -> pl.Expr:
    """TA-Lib EMA of close over n bars, computed once per n."""
    return cached(f"_ema{n}", ta("EMA", close, timeperiod=n))


def atr_expr(n: int) -> pl.Expr:
    """TA-Lib ATR: Wilder's average of the true range, computed once per n."""
    return cached(f"_atr{n}", ta("ATR", high, low, close, timeperiod=n))
