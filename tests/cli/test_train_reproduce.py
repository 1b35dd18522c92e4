"""`quantlab train reproduce RUN_ID`, end to end: a training run on a small catalog reruns
from its MLflow record to bit-identical predictions, writing nothing; a tampered predictions
version is caught at its first differing value."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import polars as pl
import pytest

from quantlab.cli import main
from tracking.support import lineage_catalog


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import mlflow

    from quantlab.train import run

    tmp = tmp_path_factory.mktemp("reproduce")
    ctx, features, labels = lineage_catalog(tmp)
    ref = run(ctx, features, labels)
    run_id = ctx.catalog.lineage(ref).extra["mlflow_run_id"]
    return tmp / "config.yaml", ctx, ref, run_id, mlflow.MlflowClient(ctx.config.tracking.uri)


def reproduce(config, run_id: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["--config", str(config), "train", "reproduce", run_id])
    return code, out.getvalue()


def _runs(client, ctx) -> int:
    experiment = client.get_experiment_by_name(ctx.config.train.experiment)
    return len(client.search_runs([experiment.experiment_id]))


def test_a_run_reproduces_bit_identically_and_writes_nothing(trained):
    config, ctx, ref, run_id, client = trained
    runs, versions = _runs(client, ctx), len(ctx.catalog.versions("predictions"))
    code, out = reproduce(config, run_id)
    assert code == 0, out
    assert f"features@v0 x labels@v0 -> {ref}" in out
    assert f"bit-identical: {ctx.catalog.read(ref).height:,} predictions rows" in out
    assert _runs(client, ctx) == runs  # no new MLflow run
    assert len(ctx.catalog.versions("predictions")) == versions  # no new catalog version


def test_a_tampered_prediction_is_reported_at_its_first_difference(trained):
    config, ctx, ref, run_id, client = trained
    recorded = ctx.catalog.read(ref).sort("symbol", "open_time", "model")
    row = recorded.height // 2
    before = recorded["prob_up"][row]
    after = float(np.nextafter(before, 2.0))  # one unit in the last place
    values = recorded["prob_up"].to_list()
    values[row] = after
    tampered = ctx.catalog.write(
        "predictions",
        recorded.with_columns(pl.Series("prob_up", values)),
        stage="tampered",
        extra={"mlflow_run_id": run_id},
    )
    client.set_tag(run_id, "output.predictions", str(tampered.version))
    try:
        code, out = reproduce(config, run_id)
    finally:
        client.set_tag(run_id, "output.predictions", str(ref.version))
    assert code == 1, out
    first = recorded.row(row, named=True)
    assert f"predictions differ from {tampered}" in out
    assert (
        f"symbol={first['symbol']} open_time={first['open_time'].isoformat()} "
        f"model={first['model']} column prob_up: recorded {after!r}" in out
    )
    assert f"rerun {before!r}" in out


def test_an_unknown_run_says_where_to_find_one(trained):
    config, *_ = trained
    code, out = reproduce(config, "0123456789abcdef0123456789abcdef")
    assert code == 2
    assert "no MLflow run" in out and "mlflow_run_id" in out
