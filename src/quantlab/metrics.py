"""Every score quantlab reports, in one copy: training, factor evaluation and backtest use these.

Pure functions on numpy arrays, polars Series or lists (and polars expressions for group-wise
correlations); no I/O. Conventions shared by all of them:

- Missing values: a NaN (or polars null) in any input drops that observation, or that pair of
  observations where two inputs are paired (a NaN return is a missing bar, not a flat one).
- Undefined: a score that cannot be computed (too few observations, one class only, constant
  returns, a non-finite result) is None, never NaN or ±inf, so it is JSON-safe and cannot be
  mistaken for a number. Wrong arguments (mismatched lengths, unknown labels) raise ValueError.
- Returns are simple per-period returns (r_t = V_t / V_{t-1} - 1). Sharpe, Sortino and the
  PSR/DSR inputs are per period unless `periods_per_year` is given (use
  `quantlab.vocab.bars_per_year(interval)`, 8760 for 1h); PSR/DSR always take per-period values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

_EULER_GAMMA = 0.5772156649015329  # the Euler–Mascheroni constant, in E[max SR] over N trials


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _array(values: Any, name: str, ndim: int = 1) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    out = np.asarray(values)
    if out.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {out.shape}")
    return out


def _missing(a: np.ndarray) -> np.ndarray:
    """Row mask of NaN / None entries (any column of a 2-d array)."""
    if a.dtype.kind == "f":
        nan = np.isnan(a)
    elif a.dtype.kind == "O":
        nan = np.vectorize(lambda v: v is None or (isinstance(v, float) and math.isnan(v)))(a)
    else:
        nan = np.zeros(a.shape, dtype=bool)
    return nan.any(axis=1) if nan.ndim == 2 else nan


def _paired(*arrays: np.ndarray) -> list[np.ndarray]:
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"inputs must have the same length, got {[len(a) for a in arrays]}")
    keep = ~np.logical_or.reduce([_missing(a) for a in arrays])
    return [a[keep] for a in arrays]


def _returns(returns: Any) -> np.ndarray:
    r = _array(returns, "returns").astype(np.float64)
    return r[~np.isnan(r)]


# --- classification ------------------------------------------------------------------------


def auc(y_true: Any, score: Any) -> float | None:
    """ROC AUC of a binary target (0/1 or bool) against a score, by the Mann–Whitney statistic.

    AUC = (R₊ − n₊(n₊+1)/2) / (n₊·n₋), R₊ = the sum of the positives' ranks of the score, ties
    sharing their average rank (a tie counts one half). None when either class is absent.
    """
    y, s = _paired(_array(y_true, "y_true"), _array(score, "score").astype(np.float64))
    y = y.astype(np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"auc needs a binary 0/1 target, got values {np.unique(y)[:5]}")
    pos = y == 1.0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(s)
    return _finite((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(
    y_true: Any, prob: Any, classes: Sequence[Any] | None = None, eps: float = 1e-12
) -> float | None:
    """Mean negative log-likelihood (cross-entropy) of the true classes, in nats.

    Binary: `prob` is 1-d, P(y = 1), and y is 0/1: −mean(y·ln p + (1 − y)·ln(1 − p)).
    Multiclass: `prob` is (n, k), column j the probability of `classes[j]` (default 0..k−1):
    −mean(ln p[i, class of y_i]). Probabilities are clipped to [eps, 1 − eps] so a confident
    miss costs ln(1/eps) ≈ 27.6 instead of infinity; rows are not renormalised. None when empty.
    """
    p = np.asarray(prob.to_numpy() if isinstance(prob, pl.Series) else prob, dtype=np.float64)
    if p.ndim not in (1, 2):
        raise ValueError(f"prob must be 1-d (binary) or 2-d (multiclass), got shape {p.shape}")
    y, p = _paired(_array(y_true, "y_true"), p)
    if len(y) == 0:
        return None
    p = np.clip(p, eps, 1.0 - eps)
    if p.ndim == 1:
        y = y.astype(np.float64)
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("binary logloss needs a 0/1 target; pass a 2-d prob for multiclass")
        return _finite(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))
    labels = list(range(p.shape[1])) if classes is None else list(classes)
    if len(labels) != p.shape[1]:
        raise ValueError(f"{len(labels)} classes given for {p.shape[1]} probability columns")
    column = {label: j for j, label in enumerate(labels)}
    if unknown := set(y.tolist()) - set(column):
        raise ValueError(f"y_true has labels {sorted(unknown)} not in classes {labels}")
    idx = np.array([column[v] for v in y.tolist()], dtype=np.int64)
    return _finite(-np.mean(np.log(p[np.arange(len(y)), idx])))


def accuracy(y_true: Any, y_pred: Any) -> float | None:
    """Share of predicted labels equal to the true ones. None when empty."""
    y, yhat = _paired(_array(y_true, "y_true"), _array(y_pred, "y_pred"))
    return _finite(np.mean(y == yhat)) if len(y) else None


def macro_f1(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> float | None:
    """Unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN).

    `labels` defaults to every label seen in y_true or y_pred; a given label seen in neither
    scores 0 (as scikit-learn's `f1_score(average="macro")`). None when empty.
    """
    y, yhat = _paired(_array(y_true, "y_true"), _array(y_pred, "y_pred"))
    if len(y) == 0:
        return None
    classes = np.union1d(y, yhat) if labels is None else list(labels)
    f1s = []
    for c in classes:
        tp = np.sum((y == c) & (yhat == c))
        wrong = np.sum((y == c) != (yhat == c))  # FP + FN
        f1s.append(2 * tp / (2 * tp + wrong) if 2 * tp + wrong else 0.0)
    return _finite(np.mean(f1s))


def hit_rate(pred: Any, actual: Any) -> float | None:
    """Share of bets whose sign matches the outcome's: mean(sign(pred) == sign(actual)).

    Only pairs where both are non-zero count: a zero prediction is no bet and a zero outcome
    neither wins nor loses. None when no such pair is left.
    """
    p, a = _paired(_array(pred, "pred").astype(float), _array(actual, "actual").astype(float))
    bets = (p != 0) & (a != 0)
    return _finite(np.mean(np.sign(p[bets]) == np.sign(a[bets]))) if bets.any() else None


def rmse(y_true: Any, pred: Any) -> float | None:
    """Root mean squared error of a numeric forecast: sqrt(mean((pred − y)²)). None when empty."""
    y, p = _paired(
        _array(y_true, "y_true").astype(np.float64), _array(pred, "pred").astype(np.float64)
    )
    return _finite(np.sqrt(np.mean((p - y) ** 2))) if len(y) else None


# --- correlation of a forecast with what followed ------------------------------------------


def pearson(x: str | pl.Expr, y: str | pl.Expr) -> pl.Expr:
    """The Pearson correlation of two columns as a polars expression (for `group_by`/`over`).

    Polars drops pairs with a null; a NaN poisons the result, and a constant column gives NaN.
    """
    return pl.corr(x, y)


def spearman(x: str | pl.Expr, y: str | pl.Expr) -> pl.Expr:
    """The Spearman correlation (Pearson of average ranks, ties share their mean rank)."""
    return pl.corr(x, y, method="spearman")


def _correlate(expr: pl.Expr, x: Any, y: Any, time: Any, min_obs: int) -> float | None:
    cols = [_array(x, "x").astype(np.float64), _array(y, "y").astype(np.float64)]
    if time is not None:
        cols.append(_array(time, "time"))
    cols = _paired(*cols)
    frame = pl.DataFrame({"x": cols[0], "y": cols[1]})
    if time is None:
        return _finite(frame.select(expr).item()) if frame.height >= min_obs else None
    per_time = (
        frame.with_columns(pl.Series("t", cols[2]))
        .group_by("t")
        .agg(pl.len().alias("n"), expr.alias("c"))
        .filter(pl.col("n") >= min_obs)
        .fill_nan(None)
    )
    return _finite(per_time["c"].mean())


def ic(x: Any, y: Any, time: Any = None, min_obs: int = 3) -> float | None:
    """Information coefficient: the Pearson correlation of a forecast `x` with the outcome `y`.

    Without `time`, one correlation over all pairs. With `time` (e.g. open_time), the mean over
    times of the cross-sectional correlation at each time, as factor evaluation's cross-section
    mode computes a bar's IC; a time with fewer than `min_obs` pairs, or a constant side, is
    skipped. None when nothing is left.
    """
    return _correlate(pearson("x", "y"), x, y, time, min_obs)


def rank_ic(x: Any, y: Any, time: Any = None, min_obs: int = 3) -> float | None:
    """Rank IC: the Spearman correlation of `x` with `y`, pooled or per `time` as `ic` does."""
    return _correlate(spearman("x", "y"), x, y, time, min_obs)


# --- returns -------------------------------------------------------------------------------


def sharpe(
    returns: Any, periods_per_year: int | None = None, risk_free: float = 0.0
) -> float | None:
    """Sharpe ratio: mean(r − rf) / sd(r − rf), sd with ddof = 1; × √periods_per_year if given.

    `risk_free` is per period. None with fewer than 2 returns or when all returns are equal
    (sd 0, where a ratio would be ±inf or rounding noise). Matches vectorbt's `sharpe_ratio`.
    """
    r = _returns(returns) - risk_free
    if len(r) < 2 or (r == r[0]).all():
        return None
    ratio = np.mean(r) / np.std(r, ddof=1)
    return _finite(ratio if periods_per_year is None else ratio * np.sqrt(periods_per_year))


def sortino(
    returns: Any, periods_per_year: int | None = None, required_return: float = 0.0
) -> float | None:
    """Sortino ratio: mean(r − τ) / sqrt(mean(min(r − τ, 0)²)); × √periods_per_year if given.

    The downside deviation averages over every period (gains count as 0), as vectorbt and
    empyrical do. None with fewer than 2 returns or no period below τ (`required_return`).
    """
    r = _returns(returns) - required_return
    if len(r) < 2:
        return None
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    if downside == 0.0:
        return None
    ratio = np.mean(r) / downside
    return _finite(ratio if periods_per_year is None else ratio * np.sqrt(periods_per_year))


def drawdown(equity: Any) -> np.ndarray:
    """Per point, the fall from the running peak: E_t / max_{s≤t} E_s − 1 (≤ 0; NaN kept)."""
    e = _array(equity, "equity").astype(np.float64)
    return e / np.fmax.accumulate(e) - 1.0


def max_drawdown(*, equity: Any = None, returns: Any = None) -> float | None:
    """The deepest drawdown, a fraction ≤ 0 (−0.147 for −14.7%); 0.0 if never below a peak.

    Give exactly one of `equity` (a value series; its first point is the first peak) or
    `returns` (compounded from a start of 1, which is itself a peak, so a loss on the first
    period counts; vectorbt's returns-based max drawdown starts after the first return and
    misses it). NaN points are skipped. None when empty.
    """
    if (equity is None) == (returns is None):
        raise ValueError("give exactly one of equity= or returns=")
    if equity is not None:
        curve = _array(equity, "equity").astype(np.float64)
        curve = curve[~np.isnan(curve)]
    else:
        curve = np.cumprod(np.concatenate([[1.0], 1.0 + _returns(returns)]))
        if len(curve) == 1:
            return None
    return _finite(np.min(drawdown(curve))) if len(curve) else None


# --- is a Sharpe ratio real? (PSR, DSR) ----------------------------------------------------


@dataclass(frozen=True)
class SharpeMoments:
    """What PSR and DSR need from one return series, all per period.

    sharpe: mean / sd (ddof 1), as `sharpe` with no annualisation; n: the number of returns;
    skew: sample skewness γ3; kurtosis: raw (Pearson) kurtosis γ4, 3 for a normal, NOT excess.
    Skew and kurtosis are the biased moment estimators (scipy's defaults).
    """

    sharpe: float
    n: int
    skew: float
    kurtosis: float


def sharpe_moments(returns: Any) -> SharpeMoments | None:
    """The per-period Sharpe, count, skewness and raw kurtosis of `returns` (None as `sharpe`)."""
    r = _returns(returns)
    sr = sharpe(r)
    if sr is None:
        return None
    return SharpeMoments(
        sharpe=sr,
        n=len(r),
        skew=float(stats.skew(r)),
        kurtosis=float(stats.kurtosis(r, fisher=False)),
    )


def probabilistic_sharpe_ratio(
    sharpe: float,
    n: int,
    sr_benchmark: float = 0.0,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float | None:
    """PSR: the probability that the true Sharpe exceeds `sr_benchmark` (Bailey & López de Prado 2012).

    PSR(SR*) = Φ( (SR − SR*)·√(n − 1) / √(1 − γ3·SR + (γ4 − 1)/4·SR²) ), with SR and SR* per
    period, γ3 the skewness and γ4 the RAW kurtosis (3 for normal; passing excess kurtosis, as
    vectorbt ≤ 1.1 and quantstats ≤ 0.0.81 did, overstates it). None when n < 2, an input is not
    finite, or the variance term is not positive (extreme skew).
    """
    if n < 2 or not all(map(math.isfinite, (sharpe, sr_benchmark, skew, kurtosis))):
        return None
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if var <= 0:
        return None
    return _finite(stats.norm.cdf((sharpe - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, var_trials: float, mean_trials: float = 0.0) -> float:
    """E[max SR] over `n_trials` trials whose Sharpe ratios have variance `var_trials`.

    E[max] ≈ mean + √V · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))), γ the Euler–Mascheroni
    constant (Bailey, Borwein, López de Prado & Zhu 2014); an approximation for N ≫ 1. One
    trial is its own maximum: N = 1 gives `mean_trials` (the formula would give −∞).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not var_trials >= 0:
        raise ValueError(f"var_trials must be a variance (>= 0), got {var_trials}")
    if n_trials == 1:
        return mean_trials
    z = (1 - _EULER_GAMMA) * stats.norm.ppf(1 - 1 / n_trials) + _EULER_GAMMA * stats.norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return float(mean_trials + math.sqrt(var_trials) * z)


def deflated_sharpe_ratio(
    sharpe: float,
    n: int,
    n_trials: int,
    var_trials: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float | None:
    """DSR: PSR against the Sharpe the best of `n_trials` unskilled trials would show by luck.

    DSR = PSR(SR0), SR0 = `expected_max_sharpe(n_trials, var_trials)` (null: the trials' mean
    Sharpe is 0), Bailey & López de Prado 2014. `sharpe` and `var_trials` (the variance of the
    N trials' Sharpe ratios, e.g. np.var(trial_sharpes, ddof=1)) are PER PERIOD: annualised
    values inflate the DSR towards 1. N = the number of trials actually evaluated.
    """
    sr0 = expected_max_sharpe(n_trials, var_trials)
    return probabilistic_sharpe_ratio(sharpe, n, sr0, skew, kurtosis)


def min_track_record_length(
    sharpe: float,
    sr_benchmark: float = 0.0,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    alpha: float = 0.05,
) -> float | None:
    """MinTRL: the returns needed before PSR(`sr_benchmark`) reaches 1 − `alpha` (Bailey & LdP 2012).

    MinTRL = 1 + (1 − γ3·SR + (γ4 − 1)/4·SR²) · (Φ⁻¹(1 − α) / (SR − SR*))², in periods, with SR
    and SR* per period and γ4 the RAW kurtosis. None when SR ≤ SR* (no track record is long
    enough), an input is not finite, or the variance term is not positive.
    """
    if not all(map(math.isfinite, (sharpe, sr_benchmark, skew, kurtosis))) or not 0 < alpha < 1:
        return None
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if sharpe <= sr_benchmark or var <= 0:
        return None
    return _finite(1.0 + var * (stats.norm.ppf(1.0 - alpha) / (sharpe - sr_benchmark)) ** 2)
