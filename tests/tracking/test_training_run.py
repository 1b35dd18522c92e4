"""The train stage's MLflow record, read back from the SQLite store: a parent run per
walk-forward, a nested child per (kind, fold), every dataset version with its catalog
fingerprint, the config, the Optuna artifacts, the model, and no secret anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import polars as pl
import pytest

from tracking.support import artifact_files, children, lineage_catalog

# Secrets planted where a careless run would leak them: an exchange secret in the
# environment (and, through ${VAR}, in a config value), an Airflow connection's password
# and API-key login, and a password in the ledger's PostgreSQL URL in the config.
ENV_SECRET = "env-secret-7f3a9c2b"
CONN_PASSWORD = "conn-password-55aa01"
CONN_LOGIN = "apikey0123456789abcdef"
CONFIG_PASSWORD = "cfg-pass-9d2e41"
SECRETS = (ENV_SECRET, CONN_PASSWORD, CONN_LOGIN, CONFIG_PASSWORD)
REGISTERED = "quantlab-test"


def _study(name: str, n: int) -> optuna.Study:
    study = optuna.create_study(
        study_name=name, sampler=optuna.samplers.TPESampler(seed=0), direction="minimize"
    )
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=n)
    return study


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from quantlab.tracking.studies import trials_table
    from quantlab.train import run, stage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    patch = pytest.MonkeyPatch()
    patch.setenv("QUANTLAB_BINANCE_API_SECRET", ENV_SECRET)
    patch.setenv(
        "AIRFLOW_CONN_BINANCE", json.dumps({"login": CONN_LOGIN, "password": CONN_PASSWORD})
    )
    studies = [_study("lightgbm-fold0", 6), _study("lightgbm-fold1", 1)]
    walk_forward = stage.walk_forward

    def with_studies(*args, **kwargs):
        # The search lane hands `studies` and `trials` over on the result; stand in for it.
        result = walk_forward(*args, **kwargs)
        result.studies = studies
        result.trials = trials_table(studies).with_columns(pl.lit(0.1).alias("valid_sharpe"))
        return result

    patch.setattr(stage, "walk_forward", with_studies)
    tmp = tmp_path_factory.mktemp("training-run")
    ctx, features, labels = lineage_catalog(
        tmp,
        paper={
            "ledger_url": f"postgresql+psycopg2://quant:{CONFIG_PASSWORD}@db:5432/ledger",
            "account": "${QUANTLAB_BINANCE_API_SECRET}",
        },
        train={"register_as": REGISTERED},
    )
    assert ctx.config.paper.account == ENV_SECRET  # the config does carry the secret
    try:
        ref = run(ctx, features, labels)
    finally:
        patch.undo()
    import mlflow

    client = mlflow.MlflowClient(ctx.config.tracking.uri)
    lineage = ctx.catalog.lineage(ref)
    parent = client.get_run(lineage.extra["mlflow_run_id"])
    return SimpleNamespace(
        ctx=ctx, client=client, parent=parent, ref=ref, lineage=lineage, inputs=(features, labels)
    )


def test_one_parent_run_and_a_nested_child_per_kind_and_fold(trained):
    client = trained.client
    parent = trained.parent
    lineage = trained.lineage
    kids = children(client, parent)
    assert [k.info.run_name for k in kids] == [f"lightgbm fold {f}" for f in range(3)]
    fold_params = {
        p["fold"]: p
        for p in json.loads(
            Path(client.download_artifacts(parent.info.run_id, "fold_params.json")).read_text()
        )["fold_params"]
    }
    for fold, (kid, want) in enumerate(zip(kids, lineage.extra["fold_metrics"], strict=True)):
        assert kid.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert kid.data.tags["fold"] == str(fold) and kid.data.tags["model"] == "lightgbm"
        for key in ("auc", "logloss", "accuracy", "rank_ic"):
            assert kid.data.metrics[key] == pytest.approx(want[key], nan_ok=True)
        tuned = {k: v for k, v in fold_params[fold].items() if k not in ("model", "fold")}
        assert kid.data.params == {k: str(v) for k, v in tuned.items()}


def test_the_parent_holds_each_folds_metrics_at_step_fold(trained):
    client = trained.client
    parent = trained.parent
    lineage = trained.lineage
    history = client.get_metric_history(parent.info.run_id, "auc")
    assert [m.step for m in history] == [0, 1, 2]
    assert [m.value for m in history] == pytest.approx(
        [m["auc"] for m in lineage.extra["fold_metrics"]]
    )
    assert {"fold0_auc", "fold2_rank_ic", "mean_auc", "mean_logloss"} <= set(parent.data.metrics)


def test_every_dataset_version_read_is_an_input_with_its_fingerprint(trained):
    ctx = trained.ctx
    parent = trained.parent
    inputs = {i.dataset.name: i for i in parent.inputs.dataset_inputs}
    assert set(inputs) == {"features@v0", "labels@v0", "klines@v0"}
    for name, item in inputs.items():
        ref = ctx.catalog.latest(name.split("@")[0])
        assert item.dataset.digest == ctx.catalog.lineage(ref).fingerprint
        assert {t.key: t.value for t in item.tags} == {"mlflow.data.context": "training"}
        source = json.loads(item.dataset.source)
        assert source["delta_table_version"] == 0 and source["path"].endswith(f"/{ref.name}")
        assert json.loads(item.dataset.profile)["num_rows"] == ctx.catalog.lineage(ref).row_count


def test_each_child_records_its_folds_train_validation_and_test_slices(trained):
    from quantlab.train.splits import fold_table
    from quantlab.train.stage import splits_of, training_frame

    ctx = trained.ctx
    client = trained.client
    parent = trained.parent
    features, labels = trained.inputs
    data = training_frame(ctx, features, labels)
    table = fold_table(data, splits_of(ctx, data))
    fingerprints = {r.name: ctx.catalog.lineage(r).fingerprint for r in (features, labels)}
    for kid, fold in zip(children(client, parent), table.iter_rows(named=True), strict=True):
        got = {
            i.dataset.name: ({t.key: t.value for t in i.tags}["mlflow.data.context"], i.dataset)
            for i in kid.inputs.dataset_inputs
        }
        n = fold["fold"]
        for part, context in (("train", "training"), ("valid", "validation"), ("test", "testing")):
            for name in ("features", "labels"):
                ctx_name, dataset = got[f"{name}@v0 fold{n} {part}"]
                assert ctx_name == context
                assert dataset.digest == fingerprints[name]
                assert json.loads(dataset.profile)["num_rows"] == fold[f"{part}_rows"]
        assert len(got) == 6


def test_tags_and_params_name_the_code_config_seed_and_versions(trained):
    from quantlab.codeversion import code_version

    ctx = trained.ctx
    parent = trained.parent
    ref = trained.ref
    lineage = trained.lineage
    features = trained.inputs[0]
    tags, params = parent.data.tags, parent.data.params
    assert tags["code_version"] == code_version() == lineage.code_version
    assert code_version().startswith(tags["git_sha"]) and len(tags["git_sha"]) == 12
    assert tags["config_hash"] == lineage.config_hash
    assert tags["seed"] == str(ctx.config.train.seed)
    assert tags["trials_total"] == str(lineage.extra["trials"])
    assert {tags[f"input.{n}"] for n in ("features", "labels", "klines")} == {"0"}
    assert tags["output.predictions"] == str(ref.version)
    assert params["train.folds"] == "3" and params["labels.horizon"] == str(
        ctx.config.labels.horizon
    )
    columns = [c for c in ctx.catalog.read(features).columns if c not in ("symbol", "open_time")]
    assert params["features"].split(",") == columns
    assert params["symbols"] == "BTCUSDT,ETHUSDT" and params["interval"] == "1h"


def test_the_config_artifact_rebuilds_the_config_with_secrets_masked(trained):
    from quantlab.config import Config

    ctx = trained.ctx
    client = trained.client
    parent = trained.parent
    path = client.download_artifacts(parent.info.run_id, "config.json")
    saved = Config.model_validate(json.loads(Path(path).read_text()))
    assert saved.train == ctx.config.train and saved.labels == ctx.config.labels
    assert saved.paper.ledger_url == "postgresql+psycopg2://quant:***@db:5432/ledger"
    assert saved.paper.account == "***"


def test_the_optuna_studies_and_where_the_trials_are(trained):
    client = trained.client
    parent = trained.parent
    lineage = trained.lineage
    run_id = parent.info.run_id
    assert lineage.extra["trials_artifact"] == f"runs:/{run_id}/optuna/trials.csv"
    trials = pl.read_csv(client.download_artifacts(run_id, "optuna/trials.csv"))
    assert trials.height == 7 and "valid_sharpe" in trials.columns
    summary = json.loads(Path(client.download_artifacts(run_id, "optuna/summary.json")).read_text())
    assert summary["trials"] == 7 and summary["states"] == {"COMPLETE": 7}
    pages = {p for p in artifact_files(client, run_id) if p.endswith(".html")}
    assert pages == {"optuna/optimization_history.html", "optuna/param_importances.html"}


def test_the_model_has_a_name_signature_example_and_registration(trained):
    import mlflow

    ctx = trained.ctx
    client = trained.client
    parent = trained.parent
    features = trained.inputs[0]
    (output,) = parent.outputs.model_outputs
    info = mlflow.models.get_model_info(f"models:/{output.model_id}")
    assert client.get_logged_model(output.model_id).name == "model"
    columns = [c for c in ctx.catalog.read(features).columns if c not in ("symbol", "open_time")]
    # The pooled model (the default) takes the symbol's code after the features.
    assert info.signature.inputs.input_names() == [*columns, "symbol"]
    assert info.saved_input_example_info is not None
    (version,) = client.search_model_versions(f"name = '{REGISTERED}'")
    assert version.run_id == parent.info.run_id
    assert version.source == f"models:/{output.model_id}"


def test_no_secret_reaches_any_param_tag_or_artifact(trained):
    ctx = trained.ctx
    client = trained.client
    parent = trained.parent
    runs = [parent, *children(client, parent)]
    for run in runs:
        for value in [*run.data.params.values(), *run.data.tags.values()]:
            assert not any(s in value for s in SECRETS), (run.info.run_name, value)
        for path in artifact_files(client, run.info.run_id):
            text = Path(client.download_artifacts(run.info.run_id, path)).read_bytes()
            assert not any(s.encode() in text for s in SECRETS), path
    # And in the store itself: every byte MLflow wrote (database, run and model artifacts).
    store = Path(ctx.config.tracking.uri.removeprefix("sqlite:///"))
    written = [store, *(p for p in Path(ctx.config.tracking.artifacts).rglob("*") if p.is_file())]
    assert len(written) > 5
    for path in written:
        assert not any(s.encode() in path.read_bytes() for s in SECRETS), path
