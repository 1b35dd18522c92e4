"""quantlab.train.tracked: the Optuna record of a walk-forward that hands over study names in
an RDB storage (the search lane's shape) rather than Study objects."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import polars as pl

from quantlab.tracking import Redactor
from quantlab.train.tracked import _log_trials


def test_study_names_are_read_back_from_their_storage_and_logged(tmp_path):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "a").as_uri())
    run_id = client.create_run(experiment).info.run_id
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="train-x.lightgbm.fold0", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    result = SimpleNamespace(studies=["train-x.lightgbm.fold0"], storage=url, trials=None)
    assert _log_trials(run_id, result, Redactor(), client) == "optuna/trials.csv"
    table = pl.read_csv(client.download_artifacts(run_id, "optuna/trials.csv"))
    assert table.height == 5 and set(table["study"]) == {"train-x.lightgbm.fold0"}
    # Studies run in memory are gone: the trials table the walk-forward kept is logged alone.
    gone = SimpleNamespace(studies=["lost"], storage=None, trials=table.head(2))
    run2 = client.create_run(experiment).info.run_id
    assert _log_trials(run2, gone, Redactor(), client) == "optuna/trials.csv"
    assert pl.read_csv(client.download_artifacts(run2, "optuna/trials.csv")).height == 2
    # No study and no trial (nothing was tuned): nothing to log.
    empty = SimpleNamespace(studies=[], storage=None, trials=table.clear())
    assert _log_trials(run2, empty, Redactor(), client) is None
