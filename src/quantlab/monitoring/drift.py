"""Has the market moved away from what the champion learned? The population stability index
of each feature: its recent rows against the last days of the champion's training, on the
reference's quantile bins (`monitor_drift`). Pure: the windows and `as_of` are arguments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from quantlab.monitoring.findings import NA, OK, crossed, level_above

if TYPE_CHECKING:
    from quantlab.config.monitoring import DriftConfig

DRIFT = "monitor_drift"
EPS = 1e-4  # the share an empty bin counts as, so a bin empty on one side stays finite

Windows = tuple[datetime | None, datetime, datetime, datetime]


def _schema() -> dict[str, pl.DataType]:
    from quantlab.catalog.datasets import DATASETS

    return dict(DATASETS[DRIFT].schema)


def _values(s: pl.Series) -> np.ndarray:
    """The finite values of `s` as float64 (nulls, NaN and infinities dropped)."""
    x = s.cast(pl.Float64).drop_nulls().to_numpy()
    return x[np.isfinite(x)]


def psi(reference: pl.Series, recent: pl.Series, bins: int) -> float | None:
    """Population stability index of `recent` against `reference`: sum (q - p) ln(q / p) over
    the reference's `bins` quantile bins (edges deduplicated, so a lumpy feature gets fewer
    bins), an empty bin counting as EPS. None when either side has no finite value."""
    ref, new = _values(reference), _values(recent)
    if ref.size == 0 or new.size == 0:
        return None
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    # side="left": bin i holds (edge[i-1], edge[i]], the last bin everything above the top edge.
    p = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1) / ref.size
    q = np.bincount(np.searchsorted(edges, new, side="left"), minlength=edges.size + 1) / new.size
    p, q = np.maximum(p, EPS), np.maximum(q, EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def drift_windows(train_end: datetime, as_of: datetime, cfg: DriftConfig) -> Windows:
    """(reference_start, reference_end, recent_start, recent_end), each window (start, end]:
    the recent one the last `recent_days` up to `as_of`, the reference the last
    `reference_days` of training up to `train_end` (start None: all of training)."""
    ref_start = (
        None if cfg.reference_days is None else train_end - timedelta(days=cfg.reference_days)
    )
    return ref_start, train_end, as_of - timedelta(days=cfg.recent_days), as_of


def _judge(value: float | None, n_recent: int, cfg: DriftConfig) -> tuple[str, float]:
    if n_recent < cfg.min_rows:
        return NA, cfg.alert_psi
    level = level_above(value, cfg.warn_psi, cfg.alert_psi)
    return level, crossed(level, cfg.warn_psi, cfg.alert_psi)


def _message(subject: str, value: float | None, level: str, n: int, cfg: DriftConfig) -> str:
    if n < cfg.min_rows:
        return (
            f"{subject}: only {n} recent row(s), fewer than drift.min_rows {cfg.min_rows}; "
            "not judged (the features stage has not covered the recent window yet)"
        )
    if value is None:
        return f"{subject}: no finite value on one side; check the feature's nulls"
    if level == OK:
        return f"{subject}: PSI {value:.3f}, stable"
    return (
        f"{subject}: PSI {value:.3f} >= {crossed(level, cfg.warn_psi, cfg.alert_psi):g} "
        f"({level}); the recent distribution moved from the training one: compare them "
        "(notebook 02) and consider retraining the champion"
    )


def check_drift(
    reference: pl.DataFrame,
    recent: pl.DataFrame,
    features: list[str],
    *,
    model: str,
    model_version: int,
    windows: Windows,
    as_of: datetime,
    cfg: DriftConfig,
) -> pl.DataFrame:
    """`monitor_drift` rows, ranked by PSI (rank 1 = the most drifting). `reference` and
    `recent` are the rows of the two `windows` (see `drift_windows`); every feature is n/a
    when `recent` has fewer than `cfg.min_rows` rows, and one missing from either is n/a."""
    ref_start, ref_end, recent_start, recent_end = windows
    rows = []
    for feature in features:
        subject = f"{model}/{feature}"
        in_ref, in_recent = feature in reference.columns, feature in recent.columns
        have = in_ref and in_recent
        ref_x = _values(reference[feature]) if in_ref else np.empty(0)
        new_x = _values(recent[feature]) if in_recent else np.empty(0)
        value = psi(reference[feature], recent[feature], cfg.bins) if have else None
        level, threshold = _judge(value, recent.height, cfg)
        message = _message(subject, value, level, recent.height, cfg)
        if not have and recent.height >= cfg.min_rows:
            level = NA
            message = (
                f"{subject}: the feature is missing from the "
                f"{'recent' if in_ref else 'reference'} rows; "
                "check that the features stage still produces it"
            )
        rows.append(
            {
                "as_of": as_of,
                "check": "drift",
                "subject": subject,
                "level": level,
                "value": value,
                "threshold": threshold,
                "message": message,
                "model": model,
                "model_version": model_version,
                "feature": feature,
                "psi": value,
                "rank": 0,
                "reference_rows": int(ref_x.size),
                "recent_rows": int(new_x.size),
                "reference_start": ref_start,
                "reference_end": ref_end,
                "recent_start": recent_start,
                "recent_end": recent_end,
            }
        )
    # psi is finite or None: None ranks last, ties by feature name.
    rows.sort(key=lambda r: (r["psi"] is None, -(r["psi"] or 0.0), r["feature"]))
    for i, row in enumerate(rows, start=1):
        row["rank"] = i
    return pl.DataFrame(rows, schema=_schema())
