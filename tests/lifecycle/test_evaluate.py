"""One scoring copy for the gate and the live tracker: each metric against a direct computation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from quantlab.lifecycle.evaluate import REGIME_COLUMNS, better, score_main, score_regime


@pytest.fixture
def rows() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    ret = rng.normal(0, 0.01, 400)
    prob = np.clip(0.5 + 20 * ret + rng.normal(0, 0.1, 400), 0.01, 0.99)
    return pl.DataFrame(
        {"prob_up": prob, "score": 2 * prob - 1, "label_up": (ret > 0).astype(np.int8), "ret": ret}
    )


def test_main_metrics_match_their_definitions(rows):
    y, p, s = rows["label_up"].to_numpy(), rows["prob_up"].to_numpy(), rows["score"].to_numpy()
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    n1 = y.sum()
    n0 = len(y) - n1
    auc = (ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert score_main("auc", rows) == pytest.approx(auc)
    assert score_main("accuracy", rows) == pytest.approx(np.mean((s > 0) == (y == 1)))
    assert score_main("brier", rows) == pytest.approx(np.mean((p - y) ** 2))
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert score_main("logloss", rows) == pytest.approx(ll)
    assert score_main("ic", rows) == pytest.approx(np.corrcoef(s, rows["ret"].to_numpy())[0, 1])


def test_a_model_without_probabilities_is_judged_by_its_score(rows):
    no_prob = rows.with_columns(pl.lit(None, pl.Float64).alias("prob_up"))
    assert score_main("auc", no_prob) == pytest.approx(score_main("auc", rows))


def test_unresolved_rows_are_left_out(rows):
    padded = pl.concat([rows, rows.head(5).with_columns(pl.lit(None, pl.Int8).alias("label_up"))])
    assert score_main("auc", padded) == pytest.approx(score_main("auc", rows))


def test_regime_metrics_over_the_six_states():
    probs = np.full((6, 6), 0.02)
    np.fill_diagonal(probs, 0.9)
    frame = pl.DataFrame({c: probs[:, i] for i, c in enumerate(REGIME_COLUMNS)}).with_columns(
        pl.Series("y", [0, 1, 2, 3, 4, 0])
    )
    assert score_regime("accuracy", frame) == pytest.approx(5 / 6)
    expected = -np.mean(np.log([0.9] * 5 + [0.02]))
    assert score_regime("logloss", frame) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="does not score a regime model"):
        score_regime("auc", frame)


def test_better_respects_the_direction_and_the_margin():
    assert better("auc", 0.56, 0.55, 0.01) and not better("auc", 0.555, 0.55, 0.01)
    assert better("logloss", 0.68, 0.69, 0.005) and not better("logloss", 0.69, 0.68)
    assert not better("auc", 0.55, 0.55)  # a tie never replaces the champion
