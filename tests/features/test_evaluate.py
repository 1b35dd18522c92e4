"""Factor evaluation: IC, rank IC, ICIR, decay, quantiles, turnover, grades, the dataset and report."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines
from quantlab.cli import main
from quantlab.config import EvaluateConfig, FeaturesConfig, LabelsConfig
from quantlab.features import build_features
from quantlab.features.evaluate import evaluate_factors, report_path, run
from quantlab.labels import build_labels

FEATURES = FeaturesConfig(
    columns=("logret_1", "rsi_14", "natr_14", "ema_dist_50"),
    timeframes={},
    cross_section={"rank": (), "zscore": ()},
    normalize={"columns": ()},
)
LABELS = LabelsConfig(horizon=4, horizons=(1, 4, 24), barrier=None, regime=None)
HORIZONS = LABELS.all_horizons


@pytest.fixture(scope="module")
def data():
    bars = pl.concat(
        [load_sample_klines(s, ("2023-02", "2023-03", "2023-04")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    feats = build_features(bars, FEATURES)
    labels = build_labels(bars, LABELS)
    # Two planted factors: the answer itself, and seeded noise.
    oracle = labels.select("symbol", "open_time", pl.col("fwd_ret_4").alias("oracle"))
    noise = np.random.default_rng(1).normal(size=feats.height)
    feats = feats.join(oracle, on=["symbol", "open_time"]).with_columns(pl.Series("noise", noise))
    return feats, labels


@pytest.fixture(scope="module")
def result(data):
    return evaluate_factors(*data, HORIZONS, EvaluateConfig(period="1w", min_obs=30))


def _row(summary: pl.DataFrame, feature: str, horizon: int) -> dict:
    return summary.filter(pl.col("feature") == feature, pl.col("horizon") == horizon).row(
        0, named=True
    )


def test_a_perfect_factor_grades_high_and_noise_fails(result):
    oracle = _row(result.summary, "oracle", 4)
    # Periods weigh equally, so the mean of their shares of the correlation is ~1, not exactly.
    assert oracle["rank_ic"] == pytest.approx(1.0, abs=0.01)
    assert oracle["ic"] == pytest.approx(1.0, abs=0.01)
    assert oracle["monotonicity"] == pytest.approx(1.0)
    # Top marks, one grade lower because it changes quintile on most bars (costly to trade).
    assert oracle["turnover"] > 0.5 and oracle["grade"] == "B"
    assert oracle["q_spread"] > 0
    noise = _row(result.summary, "noise", 4)
    assert abs(noise["rank_ic"]) < 0.03 and noise["grade"] in ("D", "F")
    assert noise["turnover"] > 0.7  # fresh noise changes quintile on most bars
    # IC decay: the answer for 4 bars ahead says less about 1 and 24 bars ahead.
    assert _row(result.summary, "oracle", 1)["rank_ic"] < 0.9
    assert _row(result.summary, "oracle", 24)["ic_decay"] < 1.0


def test_time_series_ic_is_the_full_sample_correlation_per_symbol(data, result):
    feats, labels = data
    joined = feats.join(labels, on=["symbol", "open_time"]).drop_nulls(["rsi_14", "fwd_ret_4"])
    per_symbol, weights = [], []
    for _, g in joined.group_by("symbol"):
        per_symbol.append(np.corrcoef(g["rsi_14"].to_numpy(), g["fwd_ret_4"].to_numpy())[0, 1])
        weights.append(g.height)
    ic = result.ic.filter(pl.col("feature") == "rsi_14", pl.col("horizon") == 4)
    weighted = (ic["ic"] * ic["n"]).sum() / ic["n"].sum()
    assert weighted == pytest.approx(np.average(per_symbol, weights=weights), rel=0.02)
    row = _row(result.summary, "rsi_14", 4)
    assert row["icir"] == pytest.approx(ic["ic"].mean() / ic["ic"].std())
    assert row["n_periods"] == ic.height and ic["n"].min() >= 30


def test_quantiles_split_each_symbol_history_evenly(result):
    q = result.quantiles.filter(pl.col("feature") == "natr_14", pl.col("horizon") == 1)
    assert q["quantile"].to_list() == [1, 2, 3, 4, 5]
    assert q["n"].max() - q["n"].min() <= 10


def test_cross_section_mode_correlates_symbols_per_bar(data):
    feats, labels = data
    res = evaluate_factors(
        feats, labels, (4,), EvaluateConfig(mode="cross_section", period="1mo", min_obs=30)
    )
    assert res.mode == "cross_section"
    # With two symbols there is no correlation across them: every bar is skipped.
    assert res.ic.height == 0 and res.summary.height == 0


def test_the_stage_writes_a_versioned_dataset_and_an_offline_html_report(ctx, data, capsys):
    feats, labels = data
    f = ctx.catalog.write("features", feats, stage="features")
    lab = ctx.catalog.write("labels", labels, stage="labels")
    ref = run(ctx, f, lab)
    assert ref.name == "factor_report"
    lineage = ctx.catalog.lineage(ref)
    assert lineage.inputs == {"features": f.version, "labels": lab.version}
    stored = ctx.catalog.read(ref)
    assert set(stored["grade"]) <= set("ABCDF")
    assert set(stored["horizon"]) == set(ctx.config.labels.all_horizons)
    html = report_path(ctx, ref).read_text()
    assert "IC decay" in html and "Mean forward return by quantile" in html
    assert "<script src=" not in html  # plotly.js is inline: the report opens offline
    assert html.count("Plotly.newPlot") == 4

    assert main(["--config", str(_config_path(ctx)), "features", "evaluate", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "factor_report@v" in printed and "report:" in printed and "oracle" in printed


def test_features_list_prints_the_registry(ctx, capsys):
    assert main(["--config", str(_config_path(ctx)), "features", "list"]) == 0
    out = capsys.readouterr().out
    assert "rsi_14" in out and "garman_klass_24" in out and "funding_rate" in out
    assert "63 registered features" in out or "registered features" in out
    assert main(["--config", str(_config_path(ctx)), "features", "list", "--family", "trend"]) == 0
    trend = capsys.readouterr().out
    assert "adx_14" in trend and "rsi_14" not in trend


def _config_path(ctx):
    return ctx.config.paths.data.parent / "config.yaml"
