"""quantlab.tracking.studies on tiny in-memory studies: the summary, the trials table and the
plots, with a note instead of an importance plot where a study has too few trials."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import polars as pl
import pytest

from quantlab.tracking import Redactor
from quantlab.tracking.studies import (
    IMPORTANCE_ARTIFACT,
    MIN_TRIALS_FOR_IMPORTANCE,
    log_studies,
    study_summary,
    trials_table,
)


@pytest.fixture(scope="module")
def studies():
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -2, 2)
        trial.suggest_int("leaves", 2, 64)
        if trial.number == 2:
            raise optuna.TrialPruned()
        return (x - 1) ** 2

    big = optuna.create_study(
        study_name="lightgbm-fold0", sampler=optuna.samplers.TPESampler(seed=1)
    )
    big.optimize(objective, n_trials=8)
    small = optuna.create_study(
        study_name="lightgbm-fold1", sampler=optuna.samplers.TPESampler(seed=1)
    )
    small.optimize(objective, n_trials=1)
    return [big, small]


def test_summary_counts_trials_by_state_and_keeps_the_best(studies):
    summary = study_summary(studies)
    assert summary["trials"] == 9
    assert summary["states"] == {"COMPLETE": 8, "PRUNED": 1}
    big = summary["studies"][0]
    assert big["states"] == {"COMPLETE": 7, "PRUNED": 1} and big["direction"] == "minimize"
    assert big["best_value"] == studies[0].best_value


def test_trials_table_has_a_row_per_trial(studies):
    table = trials_table(studies)
    assert table.height == 9
    assert table.filter(pl.col("state") == "PRUNED")["number"].to_list() == [2]
    assert json.loads(table["params"][0]).keys() == {"x", "leaves"}


def test_logged_artifacts_read_back(studies, store):
    client, experiment_id = store
    run_id = client.create_run(experiment_id).info.run_id
    trials = trials_table(studies).with_columns(
        pl.lit(0.5).alias("valid_sharpe"),
        pl.struct(a=pl.lit(1)).alias("nested"),  # a struct column goes as JSON text
    )
    path = log_studies(run_id, studies, trials, redactor=Redactor(), client=client)
    assert path == "optuna/trials.csv"
    back = pl.read_csv(client.download_artifacts(run_id, path))
    assert back.height == 9 and back["valid_sharpe"].to_list() == [0.5] * 9
    assert back["nested"][0] == '{"a":1}'
    summary = json.loads(Path(client.download_artifacts(run_id, "optuna/summary.json")).read_text())
    assert summary["trials"] == 9 and summary["trials_table_rows"] == 9
    history = Path(
        client.download_artifacts(run_id, "optuna/optimization_history.html")
    ).read_text()
    assert history.count("plotly-graph-div") >= 2 and "lightgbm-fold1" in history
    importance = Path(client.download_artifacts(run_id, IMPORTANCE_ARTIFACT)).read_text()
    assert importance.count("plotly-graph-div") >= 1  # the big study's plot
    assert (
        f"1 completed trial(s) over 2 parameter(s); it needs at least {MIN_TRIALS_FOR_IMPORTANCE}"
        in importance
    )


def test_studies_are_read_back_from_a_storage_url(tmp_path):
    from quantlab.tracking.studies import load_studies

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    stored = optuna.create_study(study_name="xgboost-fold0", storage=url)
    stored.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    (loaded,) = load_studies(url, ["xgboost-fold0"])
    assert study_summary([loaded])["trials"] == 3
    assert trials_table([loaded])["study"].to_list() == ["xgboost-fold0"] * 3
