"""quantlab.metrics.min_track_record_length: the research note's vector B3 and its properties."""

from __future__ import annotations

import pytest

from quantlab import metrics as m


def test_min_trl_mlfinlab_vector_b3():
    # B3: MinTRL(SR 1.14, SR* 1, γ3 0, γ4 3, α 0.05) = 228.73498 (mlfinlab expects 228.73497).
    assert m.min_track_record_length(1.14, 1.0, 0.0, 3.0, 0.05) == pytest.approx(
        228.73498, abs=1e-4
    )


def test_min_trl_is_where_psr_reaches_one_minus_alpha():
    sr, skew, kurt = 0.08, -0.4, 7.0
    trl = m.min_track_record_length(sr, 0.0, skew, kurt, 0.05)
    # PSR's sqrt(n − 1) equals the MinTRL's (MinTRL − 1): at n = MinTRL the PSR is exactly 95%.
    assert m.probabilistic_sharpe_ratio(sr, trl, 0.0, skew, kurt) == pytest.approx(0.95, abs=1e-12)
    # Fat tails and negative skew need a longer record than a normal with the same Sharpe.
    assert trl > m.min_track_record_length(sr, 0.0, 0.0, 3.0, 0.05)
    # A stricter confidence needs more.
    assert m.min_track_record_length(sr, 0.0, skew, kurt, 0.01) > trl


def test_min_trl_edges_are_none():
    assert m.min_track_record_length(0.05, 0.05) is None  # SR = SR*: no record is long enough
    assert m.min_track_record_length(-0.1) is None
    assert m.min_track_record_length(float("nan")) is None
    assert m.min_track_record_length(1.0, 0.0, 5.0, 3.0) is None  # variance term < 0
    assert m.min_track_record_length(0.1, alpha=1.5) is None
