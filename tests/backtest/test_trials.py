"""quantlab.backtest.trials: N and V[SR] from a training run's trials.csv read back through MLflow,
and from grids added on top."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from quantlab.backtest.training_trials import trials_from_training
from quantlab.backtest.trials import TrialSet
from quantlab.catalog import TrainingRun
from quantlab.errors import DataError
from quantlab.tracking.studies import TRIALS_ARTIFACT
from quantlab.train.search import TRIAL_COLUMNS

PPY = 8760  # 1h bars

# A trials table in train.search's shape: two folds of one study, a pruned and a failed
# trial (no Sharpe), one complete trial whose book stayed flat (no Sharpe either).
TRIALS = pl.DataFrame(
    {
        "model": ["lightgbm"] * 7,
        "fold": [0, 0, 0, 0, 1, 1, 1],
        "study": ["s.fold0"] * 4 + ["s.fold1"] * 3,
        "number": [0, 1, 2, 3, 0, 1, 2],
        "state": ["COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"],
        "value": [0.69, 0.70, 0.68, None, 0.69, 0.69, 0.67],
        "duration_s": [1.0] * 7,
        "params": ['{"lr": 0.1}'] * 7,
        "valid_sharpe": [1.2, None, -0.4, None, 2.1, None, 0.3],
    },
    schema=TRIAL_COLUMNS,
)


@pytest.fixture
def logged(tmp_path):
    """A run in a temporary MLflow store (SQLite, file artifacts) holding TRIALS as train logs it."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_text(run_id, TRIALS.write_csv(), TRIALS_ARTIFACT)
    extra = TrainingRun(
        mlflow_run_id=run_id, trials=7, trials_artifact=f"runs:/{run_id}/{TRIALS_ARTIFACT}"
    )
    return uri, extra


def test_trials_from_a_logged_training_run(logged, tmp_path):
    uri, extra = logged
    trials = trials_from_training(extra, uri, periods_per_year=PPY, dst_path=tmp_path / "dl")
    scored = [1.2, -0.4, 2.1, 0.3]
    # Annualised valid Sharpe -> per period; pruned, failed and flat trials count in N only.
    np.testing.assert_allclose(trials.sharpes, np.array(scored) / math.sqrt(PPY), rtol=1e-15)
    assert trials.n_trials == 7 == extra.trials and trials.n_scored == 4
    assert trials.sharpe_var == pytest.approx(np.var(scored, ddof=1) / PPY, rel=1e-12)
    assert trials.counts() == {"optuna": {"scored": 4, "unscored": 3}}
    assert "N = 7" in trials.describe() and "not in V[SR]" in trials.describe()
    # The lineage's dict form reads the same.
    again = trials_from_training(
        extra.model_dump(), uri, periods_per_year=PPY, dst_path=tmp_path / "d2"
    )
    assert again == trials


def test_grids_extend_the_trials(logged, tmp_path):
    uri, extra = logged
    trials = trials_from_training(extra, uri, periods_per_year=PPY, dst_path=tmp_path / "dl")
    grid = trials.extend("signal_grid", [0.5, 1.5, float("nan")], periods_per_year=PPY)
    grid = grid.extend("sweep", [0.01, -0.02])  # already per period
    assert grid.n_trials == 12 and grid.n_scored == 8
    assert grid.counts()["signal_grid"] == {"scored": 2, "unscored": 1}
    assert grid.sharpes[-2:] == (0.01, -0.02)
    assert grid.sharpes[4] == pytest.approx(0.5 / math.sqrt(PPY))
    assert trials.n_trials == 7  # extend returns a new set; the old one is unchanged
    with pytest.raises(ValueError, match="name a trial source"):
        trials.extend("", [1.0])


def test_no_tuning_no_table_and_a_missing_artifact(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert trials_from_training(TrainingRun(), uri, periods_per_year=PPY).n_trials == 0
    counted = trials_from_training({"trials": 5}, uri, periods_per_year=PPY)
    assert counted.n_trials == 5 and counted.sharpe_var is None
    assert TrialSet().extend("optuna", [0.1]).sharpe_var is None  # one Sharpe has no spread
    with pytest.raises(DataError, match=r"tracking\.uri"):
        trials_from_training(
            {"trials_artifact": "runs:/0123456789abcdef/optuna/trials.csv"},
            uri,
            periods_per_year=PPY,
            dst_path=tmp_path / "dl",
        )


def test_trials_of_a_real_small_training_run(tmp_path):
    """The train stage on two months of the shipped sample (3 folds × 4 trials, ~20 s): the
    TrialSet from its lineage counts every trial and converts every recorded valid Sharpe."""
    import mlflow

    from quantlab.train import run
    from tracking.support import lineage_catalog

    ctx, features, labels = lineage_catalog(tmp_path, train={"trials": 4})
    extra = ctx.catalog.lineage(run(ctx, features, labels)).extra
    uri = ctx.config.tracking.uri
    trials = trials_from_training(extra, uri, periods_per_year=PPY, dst_path=tmp_path / "dl")
    table = pl.read_csv(
        mlflow.artifacts.download_artifacts(
            artifact_uri=extra["trials_artifact"], tracking_uri=uri, dst_path=str(tmp_path / "t")
        )
    )
    recorded = table["valid_sharpe"].drop_nulls().to_numpy()
    assert trials.n_trials == extra["trials"] == table.height
    assert trials.n_scored == len(recorded) >= 2
    np.testing.assert_allclose(trials.sharpes, recorded / math.sqrt(PPY), rtol=1e-12)
    assert trials.sharpe_var == pytest.approx(np.var(recorded, ddof=1) / PPY, rel=1e-9)
    # The lineage keeps the same Sharpes, so the backtest needs no MLflow round trip; the
    # artifact is the fallback for versions written before they were kept.
    assert extra["trial_sharpes"] is not None and len(extra["trial_sharpes"]) == table.height
    from_artifact = trials_from_training(
        {k: v for k, v in extra.items() if k != "trial_sharpes"},
        uri,
        periods_per_year=PPY,
        dst_path=tmp_path / "dl2",
    )
    assert from_artifact.sharpes == trials.sharpes and from_artifact.n_trials == trials.n_trials
