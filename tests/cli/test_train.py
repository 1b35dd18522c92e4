"""`quantlab train folds` on a small catalog, and the same fold table on the training run in MLflow."""

from __future__ import annotations

import contextlib
import io
import re

import polars as pl
import pytest

from helpers import load_sample_klines, write_config
from quantlab.catalog import DatasetRef
from quantlab.cli import main
from quantlab.context import RunContext
from quantlab.features import build_features
from quantlab.labels import build_labels
from quantlab.train import fold_table, make_splits

_ROW = re.compile(
    r"^\s+(\d+)  (\S+ \S+) - (\S+ \S+) (\S+ \S+)  (\S+ \S+) - (\S+ \S+) (\S+ \S+)  "
    r"(\S+ \S+) - (end|\S+ \S+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$"
)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A catalog holding features and labels (twice: v0 on two months, v1 on three)."""
    config = write_config(tmp_path_factory.mktemp("train-cli"), train={"embargo_bars": 6})
    ctx = RunContext.load(config)
    bars = pl.concat(
        [load_sample_klines(s, ("2023-02", "2023-03", "2023-04")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    for cut in ("2023-04-01", "2023-05-01"):
        part = bars.filter(pl.col("open_time") < pl.lit(cut).str.to_datetime(time_zone="UTC"))
        ctx.catalog.write(
            "features", build_features(part, ctx.config.features), stage="features", config_hash=cut
        )
        ctx.catalog.write(
            "labels", build_labels(part, ctx.config.labels), stage="labels", config_hash=cut
        )
    return config, ctx


def folds(config, *extra: str) -> tuple[int, list[tuple[str, ...]], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), "train", "folds", *extra])
    rows = [m.groups() for line in out.getvalue().splitlines() if (m := _ROW.match(line))]
    return code, rows, out.getvalue() + err.getvalue()


def expected(ctx: RunContext, version: int) -> pl.DataFrame:
    feats = ctx.catalog.read(DatasetRef("features", version))
    labs = ctx.catalog.read(DatasetRef("labels", version))
    data = feats.join(labs, on=["symbol", "open_time"])
    splits = make_splits(data, ctx.config.train, interval="1h", horizon=ctx.config.labels.horizon)
    return fold_table(data, splits)


def _t(value) -> str:
    return "end" if value is None else value.strftime("%Y-%m-%d %H:%M")


def test_folds_prints_each_window_and_its_rows_for_the_latest_versions(catalog):
    config, ctx = catalog
    code, rows, out = folds(config)
    assert code == 0, out
    assert "features@v1 x labels@v1" in out and "embargo 6:00:00" in out
    table = expected(ctx, 1)
    assert len(rows) == table.height == 3
    for got, want in zip(rows, table.iter_rows(named=True), strict=True):
        assert got == (
            str(want["fold"]),
            _t(want["train_start"]),
            _t(want["train_end"]),
            _t(want["train_labels_before"]),
            _t(want["valid_start"]),
            _t(want["valid_end"]),
            _t(want["valid_labels_before"]),
            _t(want["test_start"]),
            _t(want["test_end"]),
            f"{want['train_rows']:,}",
            f"{want['valid_rows']:,}",
            f"{want['test_rows']:,}",
        )
    assert rows[-1][8] == "end"


def test_folds_takes_the_versions_it_is_given(catalog):
    config, ctx = catalog
    code, rows, out = folds(config, "--features", "0", "--labels", "0")
    assert code == 0, out
    assert "features@v0 x labels@v0" in out
    assert [r[-1] for r in rows] == [f"{n:,}" for n in expected(ctx, 0)["test_rows"]]
    assert rows != folds(config)[1]


def test_folds_on_an_empty_catalog_says_what_to_run(tmp_path):
    code, rows, out = folds(write_config(tmp_path))
    assert code == 2 and rows == []
    assert "features" in out


def test_the_training_run_logs_the_same_fold_table(catalog):
    import mlflow

    from quantlab.train import run
    from quantlab.train.stage import FOLDS_ARTIFACT

    _, ctx = catalog
    ref = run(ctx, ctx.catalog.latest("features"), ctx.catalog.latest("labels"))
    run_id = ctx.catalog.lineage(ref).extra["mlflow_run_id"]
    client = mlflow.MlflowClient(tracking_uri=ctx.config.tracking.uri)
    assert FOLDS_ARTIFACT in [a.path for a in client.list_artifacts(run_id)]
    logged = pl.read_csv(
        client.download_artifacts(run_id, FOLDS_ARTIFACT), try_parse_dates=True
    ).with_columns(pl.col(pl.Datetime).dt.cast_time_unit("ms"))
    table = expected(ctx, 1)
    assert logged.select("fold", "train_rows", "valid_rows", "test_rows").equals(
        table.select("fold", "train_rows", "valid_rows", "test_rows")
    )
    assert logged["test_start"].to_list() == table["test_start"].to_list()
    assert logged["train_labels_before"].to_list() == table["train_labels_before"].to_list()
