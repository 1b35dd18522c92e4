"""Building blocks shared by the indicator families, written to match TA-Lib's definitions.

Every expression runs over one symbol's bars sorted by time, after `with_helpers`
added the row index and the one-bar quantities most indicators reuse. TA-Lib
seeds its exponential averages with the simple mean of the first window, not
with the first value, so `seeded_ewm` does the same: values before the seed are
null, the seed is the window mean, and the recursion runs from there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import polars as pl

IDX = pl.col("_i")  # row number within the symbol
PREV_CLOSE = pl.col("_pc")
TRUE_RANGE = pl.col("_tr")  # null on the first row, which has no previous close
LOG_RET = pl.col("_lr")  # one-bar log return
HELPERS = ("_i", "_pc", "_tr", "_lr")

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
        "_tr": pl.when(pc.is_not_null()).then(
            pl.max_horizontal(high - low, (high - pc).abs(), (low - pc).abs())
        ),
        "_lr": (close / pc).log(),
    }
    if exprs is not None:
        used = {name for e in exprs for name in e.meta.root_names()}
        helpers = {k: v for k, v in helpers.items() if k in used}
    return lf.with_columns(v.alias(k) for k, v in helpers.items()) if helpers else lf


def seeded_ewm(x: pl.Expr, alpha: float, seed_at: int, seed: pl.Expr) -> pl.Expr:
    """y = seed at row `seed_at`, then y_t = (1 - alpha) * y_{t-1} + alpha * x_t; null before."""
    return (
        pl.when(seed_at == IDX)
        .then(seed)
        .when(seed_at < IDX)
        .then(x)
        .ewm_mean(alpha=alpha, adjust=False)
    )


def window_mean(x: pl.Expr, n: int, end: int) -> pl.Expr:
    """The mean of the n values of `x` ending at row `end`: one number, not a rolling column."""
    return x.slice(end - n + 1, n).mean()


def ema(x: pl.Expr, n: int, first: int = 0, seed_at: int | None = None) -> pl.Expr:
    """TA-Lib EMA: alpha 2/(n+1), seeded with the mean of the n values ending at `seed_at`.

    `first` is the first row where `x` is defined; the seed defaults to its first full window.
    """
    at = first + n - 1 if seed_at is None else seed_at
    return seeded_ewm(x, 2.0 / (n + 1), at, window_mean(x, n, at))


def wilder(x: pl.Expr, n: int, first: int = 0) -> pl.Expr:
    """Wilder's smoothing (alpha 1/n) seeded with the mean of the first n defined values."""
    return seeded_ewm(x, 1.0 / n, first + n - 1, window_mean(x, n, first + n - 1))


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
    return cached(f"_ema{n}", ema(close, n))


def atr_expr(n: int) -> pl.Expr:
    """TA-Lib ATR: Wilder's average of the true range, seeded on rows 1..n."""
    return cached(f"_atr{n}", wilder(TRUE_RANGE, n, first=1))


def directional_movement(n: int) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """TA-Lib's smoothed +DM, -DM and true range (all divided by n), first defined at row n."""
    up = high - high.shift(1)
    down = low.shift(1) - low
    plus_dm = pl.when((up > 0) & (up > down)).then(up).otherwise(0.0)
    minus_dm = pl.when((down > 0) & (down > up)).then(down).otherwise(0.0)

    def smooth(x: pl.Expr) -> pl.Expr:
        # TA-Lib sums the first n-1 values, then S = S - S/n + x: a Wilder EMA seeded with sum/n.
        seed = x.slice(1, n - 1).sum() / n
        return pl.when(IDX.ge(n)).then(seeded_ewm(x, 1.0 / n, n - 1, seed))

    return (
        cached(f"_pdm{n}", smooth(plus_dm)),
        cached(f"_mdm{n}", smooth(minus_dm)),
        cached(f"_trs{n}", smooth(TRUE_RANGE)),
    )
