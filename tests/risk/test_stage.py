"""The risk stage on catalog versions: gated klines, predictions and labels in; `targets`
(every out-of-fold bar and the newest bars, within every cap) and `calibration` out.

Real BTC and ETH spot 1h klines of the shipped sample; the predictions are SYNTHETIC (a
seeded draw standing in for a model's), and the labels are the real 4-bar outcomes.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import load_sample_klines, write_config
from quantlab.catalog import RiskRun
from quantlab.portfolio.sizing import calibration, size_targets
from quantlab.vocab import KEY, bars_per_year

MONTHS = ("2023-02", "2023-03", "2023-04")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from quantlab.context import RunContext

    return RunContext.load(write_config(tmp_path_factory.mktemp("risk")))


@pytest.fixture(scope="module")
def stored(ctx):
    from quantlab import quality
    from quantlab.schema import KLINES_KEY, UTC_MS, conform_klines

    bars = pl.concat([load_sample_klines(s, MONTHS) for s in ("BTCUSDT", "ETHUSDT")])
    klines = ctx.catalog.upsert("klines", conform_klines(bars), KLINES_KEY, stage="ingest")
    checks = quality.run(ctx, klines)
    h = ctx.config.labels.horizon
    keyed = bars.sort(*KEY).select(*KEY, "close")
    fwd = (pl.col("close").shift(-h) / pl.col("close")).log().over("symbol")
    labels = keyed.with_columns(
        (pl.col("open_time") + pl.duration(hours=h)).cast(UTC_MS).alias("label_time"),
        pl.when(fwd.is_not_null()).then((fwd > 0).cast(pl.Int8)).alias("label_up"),
    ).drop("close")
    labels_ref = ctx.catalog.write("labels", labels, stage="labels")
    # The first third is the training span (no prediction), then three folds by row, and
    # each symbol's last `h` bars (no label yet) are the newest bars: fold -1.
    n = keyed.height
    p = np.clip(0.5 + 0.15 * np.random.default_rng(5).standard_normal(n), 0.01, 0.99)
    first_oof = keyed["open_time"].sort()[n // 3]
    fold = pl.when(pl.col("open_time") < first_oof).then(-2).otherwise(pl.col("i") % 3)
    newest = pl.col("open_time") > pl.col("open_time").max().over("symbol") - pl.duration(hours=h)
    preds = (
        keyed.with_row_index("i")
        .select(
            *KEY,
            model=pl.lit("lightgbm"),
            fold=pl.when(newest).then(-1).otherwise(fold).cast(pl.Int32),
            prob_up=pl.Series(p),
            prob_down=pl.lit(None, pl.Float64),
            prob_flat=pl.lit(None, pl.Float64),
            pred_ret=pl.lit(None, pl.Float64),
            score=pl.Series(2 * p - 1),
        )
        .filter(pl.col("fold") >= -1)
    )
    preds = pl.concat([preds, preds.with_columns(model=pl.lit("xgboost"))])
    preds_ref = ctx.catalog.write("predictions", preds, stage="train")
    return bars, klines, checks, labels_ref, preds_ref, preds, labels


def test_the_stage_writes_size_targets_of_the_primary_model_with_its_calibration(ctx, stored):
    from quantlab import risk

    bars, klines, checks, labels_ref, preds_ref, preds, labels = stored
    ref = risk.run(ctx, preds_ref, klines, checks, labels_ref)
    out = ctx.catalog.read(ref).sort(*KEY)
    primary = preds.filter(pl.col("model") == "lightgbm")
    want = size_targets(
        primary,
        bars.select(*KEY, "open", "close"),
        ctx.config.risk,
        ctx.config.signal,
        bars_per_year("1h"),
        horizon=ctx.config.labels.horizon,
    )
    assert out.height == primary.height
    assert (out["fold"] == -1).sum() == 2 * ctx.config.labels.horizon  # the newest bars too
    assert out.drop("fold").equals(want.select(out.drop("fold").columns).sort(*KEY))
    assert (out["target_weight"] > 0).any()  # something was sized on the default config
    lineage = ctx.catalog.lineage(ref)
    facts = RiskRun.of(lineage)
    assert facts.policy == "vol_target" and facts.rows == out.height
    assert facts.oof_rows == primary.filter(pl.col("fold") >= 0).height
    oof = primary.filter(pl.col("fold") >= 0)
    table, brier = calibration(oof, labels.rename({"label_up": "up"}), bins=10)
    assert facts.brier == {str(f): b for f, b in zip(brier["fold"], brier["brier"], strict=True)}
    assert set(facts.brier) == {"0", "1", "2"}
    stored_table = ctx.catalog.read(ctx.catalog.latest("calibration")).sort("fold", "bin")
    assert stored_table.equals(table.select(stored_table.columns))
    assert lineage.inputs == {
        "predictions": preds_ref.version,
        "klines": klines.version,
        "klines_checks": checks.version,
        "labels": labels_ref.version,
    }
