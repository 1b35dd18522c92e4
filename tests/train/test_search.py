"""Per-fold Optuna studies: pruning, recorded trials, seeds, reuse, the valid Sharpe, storage errors."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import polars as pl
import pytest
from pydantic import ValidationError

from quantlab.config import FeaturesConfig, SignalConfig, TrainConfig
from quantlab.errors import ConfigError
from quantlab.features import feature_names
from quantlab.portfolio.returns import signal_returns, signal_sharpe
from quantlab.train import make_splits, walk_forward
from quantlab.train.models import booster
from quantlab.train.search import (
    Evaluated,
    SearchSettings,
    SharpeRule,
    make_pruner,
    open_storage,
    sampler_seed,
    tune_fold,
)

CFG = TrainConfig(folds=3, trials=10, num_boost_round=60, embargo_bars=12, prune_warmup_rounds=5)
# A rule that trades every score, so a trial's book is never flat and its Sharpe is defined.
RULE = SharpeRule(SignalConfig(smoothing=1, threshold=0.0), cost=0.0015, periods_per_year=8760)


def _lightgbm_fold(rows, cfg: TrainConfig, search: SearchSettings, valid_rows=None, number=0):
    x, y, train, valid = rows
    model = booster("lightgbm")
    calls = []

    def fit_score(params, callbacks):
        calls.append(params)
        fitted = model.fit(
            x[train], y[train], x[valid], y[valid], params, cfg.seed, cfg.num_boost_round,
            callbacks=callbacks,
        )  # fmt: skip
        prob = model.predict_proba(fitted, x[valid])
        loss = -np.mean(y[valid] * np.log(prob) + (1 - y[valid]) * np.log(1 - prob))
        return Evaluated(fitted.rounds, float(loss), prob * 2 - 1)

    found = tune_fold("lightgbm", number, model.suggest, fit_score, cfg, search, valid_rows)
    return found, calls


@pytest.fixture(scope="module")
def learnable():
    """Rows whose label a feature predicts, so the valid loss falls and trials differ clearly
    (on two months of real bars the valid loss rises from the first round for every trial)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1200, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=1200) > 0).astype(float)
    return x, y, np.arange(900), np.arange(900, 1200)


def test_trials_trailing_the_median_are_pruned_and_every_trial_is_recorded(learnable, tmp_path):
    cfg = CFG.model_copy(
        update={"trials": 8, "num_boost_round": 40, "prune_startup_trials": 2, "report_interval": 2}
    )
    search = SearchSettings(storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    found, calls = _lightgbm_fold(learnable, cfg, search)
    frame = found.frame
    assert frame.height == len(calls) == found.trials == cfg.trials
    states = frame["state"].to_list()
    assert "PRUNED" in states and states[:2] == ["COMPLETE"] * 2
    assert frame["value"].is_not_null().all()  # a pruned trial keeps its last reported loss
    assert (frame["duration_s"] > 0).all()
    assert [json.loads(p) for p in frame["params"]] == [dict(sorted(c.items())) for c in calls]
    best = frame.filter(pl.col("state") == "COMPLETE").sort("value").row(0, named=True)
    assert json.loads(best["params"]) == found.params
    # The booster's own metric was reported every 2nd round; a pruned trial stopped early.
    study = optuna.load_study(study_name=found.study, storage=search.storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(done[0].intermediate_values) == list(range(1, 40, 2))
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(max(t.intermediate_values) < 39 for t in pruned)
    # Without a pruner, the same search prunes nothing.
    unpruned, _ = _lightgbm_fold(
        learnable, cfg.model_copy(update={"pruner": "none"}), SearchSettings()
    )
    assert set(unpruned.frame["state"]) == {"COMPLETE"}


def test_a_finished_study_is_reused_and_an_unfinished_one_resumed(learnable, tmp_path):
    search = SearchSettings(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_prefix="t")
    few = CFG.model_copy(update={"trials": 3, "num_boost_round": 20})
    first, calls = _lightgbm_fold(learnable, few, search)
    assert len(calls) == 3
    again, calls = _lightgbm_fold(learnable, few, search)
    assert calls == []  # nothing re-run: the stored best is taken
    assert (again.params, again.rounds, again.trials) == (first.params, first.rounds, 3)
    assert again.frame.equals(first.frame)
    more, calls = _lightgbm_fold(learnable, few.model_copy(update={"trials": 5}), search)
    assert len(calls) == 2 and more.trials == 5  # resumed up to the new count


def test_each_fold_and_worker_samples_its_own_candidates(learnable):
    seeds = {
        sampler_seed(42, k, f, w) for k in ("lightgbm", "xgboost") for f in range(4) for w in (0, 1)
    }
    assert len(seeds) == 16
    assert sampler_seed(42, "lightgbm", 0) == sampler_seed(42, "lightgbm", 0, worker=0)
    cfg = CFG.model_copy(update={"trials": 2, "pruner": "none", "num_boost_round": 10})
    first = [_lightgbm_fold(learnable, cfg, SearchSettings(), number=n)[0].frame for n in (0, 1)]
    assert first[0]["params"][0] != first[1]["params"][0]  # same data, other fold: other draws
    again = _lightgbm_fold(learnable, cfg, SearchSettings(), number=0)[0].frame
    assert again["params"].to_list() == first[0]["params"].to_list()  # and reproducible


def test_xgboost_prunes_on_its_eval_metric_every_report_interval(learnable, tmp_path):
    x, y, train, valid = learnable
    model = booster("xgboost")
    cfg = CFG.model_copy(update={"models": ("xgboost",), "trials": 6, "report_interval": 5})

    def fit_score(params, callbacks):
        fitted = model.fit(
            x[train], y[train], x[valid], y[valid], params, cfg.seed, 30, callbacks=callbacks
        )
        return Evaluated(fitted.rounds, 0.0, np.zeros(len(valid)))

    search = SearchSettings(storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    found = tune_fold("xgboost", 0, model.suggest, fit_score, cfg, search)
    study = optuna.load_study(study_name=found.study, storage=search.storage)
    # valid-logloss, the booster's eval_metric, at every 5th round (0-based steps).
    assert sorted(study.trials[0].intermediate_values) == [4, 9, 14, 19, 24, 29]


def _hand_book() -> pl.DataFrame:
    t = pl.datetime_range(
        pl.datetime(2024, 1, 1, time_zone="UTC"),
        pl.datetime(2024, 1, 1, 3, time_zone="UTC"),
        "1h",
        eager=True,
    ).cast(pl.Datetime("ms", "UTC"))
    return pl.DataFrame(
        {
            "symbol": ["A"] * 4 + ["B"] * 4,
            "open_time": pl.concat([t, t]),
            "score": [0.5, 0.5, -0.5, 0.5, 0.05, 0.3, 0.3, -0.3],
            "fwd_ret_1": [
                *(math.log(1.01), math.log(0.98), math.log(1.02), None),
                *(math.log(1.00), math.log(1.05), math.log(0.99), math.log(1.03)),
            ],
        }
    )


def test_the_valid_sharpe_is_the_book_after_costs_by_hand():
    rows, cost = _hand_book(), 0.01
    rule = SignalConfig(smoothing=1, threshold=0.1, allow_short=True)
    # Directions, threshold 0.1: A +1 +1 -1 +1; B 0 +1 +1 -1. Weights are direction / 2.
    # A: turnover .5 0 1 1; B: 0 .5 0 1. Bar returns (A's last one is unknown: 0):
    want = [
        0.5 * 0.01 - cost * 0.5,
        0.5 * -0.02 + 0.5 * 0.05 - cost * 0.5,
        -0.5 * 0.02 + 0.5 * -0.01 - cost * 1.0,
        0.0 + -0.5 * 0.03 - cost * 2.0,
    ]
    got = signal_returns(rows, rule, cost)["returns"].to_list()
    assert got == pytest.approx(want, abs=1e-12)
    sd = np.std(want, ddof=1)
    assert signal_sharpe(rows, rule, cost, 8760) == pytest.approx(
        np.mean(want) / sd * math.sqrt(8760)
    )
    # Long-only: B's short becomes flat, and so does A's third bar.
    assert signal_returns(rows, SignalConfig(smoothing=1, threshold=0.1), cost)["returns"][2] == (
        pytest.approx(0.5 * -0.01 - cost * 0.5)
    )


def test_each_complete_trial_records_its_valid_sharpe():
    rows = _hand_book().drop("score")
    scores = _hand_book()["score"].to_numpy()
    rule = SharpeRule(SignalConfig(smoothing=1, threshold=0.1, allow_short=True), 0.01, 8760)
    cfg = TrainConfig(trials=3, pruner="none")
    found = tune_fold(
        "lightgbm",
        0,
        lambda trial: {"x": trial.suggest_float("x", 0, 1)},
        lambda params, callbacks: Evaluated(1, params["x"], scores),
        cfg,
        SearchSettings(sharpe=rule),
        rows,
    )
    want = signal_sharpe(rows.with_columns(score=scores), rule.signal, 0.01, 8760)
    assert want is not None
    assert found.frame["valid_sharpe"].to_list() == [want] * 3


def test_walk_forward_records_every_trial_and_a_rerun_reuses_the_studies(data, tmp_path):
    names = feature_names(FeaturesConfig())
    cfg = CFG.model_copy(update={"trials": 4, "num_boost_round": 30})
    splits = make_splits(data, cfg, interval="1h", horizon=4)
    search = SearchSettings(storage=f"sqlite:///{tmp_path / 'optuna.db'}", sharpe=RULE)
    run = lambda s: walk_forward(data, names, "label_up", "fwd_ret_4", cfg, splits, search=s)  # noqa: E731
    first = run(search)
    counted = first.trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"]))
    per_fold = counted.group_by("model", "fold").len().sort("fold")["len"].to_list()
    assert per_fold == [m["trials"] for m in first.fold_metrics] == [4, 4, 4]
    assert first.studies == sorted(set(first.trials["study"]))
    assert first.storage == search.storage
    complete = first.trials.filter(pl.col("state") == "COMPLETE")
    assert complete["valid_sharpe"].is_not_null().all()
    again = run(search)  # every study is complete: nothing is tuned again
    assert again.trials.equals(first.trials)
    assert again.predictions.equals(first.predictions)
    # The studies' storage moves no result: in memory, the same predictions.
    assert run(SearchSettings(sharpe=RULE)).predictions.equals(first.predictions)


def test_a_storage_url_sqlalchemy_cannot_use_is_refused_with_the_fix():
    with pytest.raises(ValidationError, match=r"postgresql\+psycopg2://"):
        TrainConfig(storage="postgresql://quant:pw@127.0.0.1/optuna")
    with pytest.raises(ValidationError, match=r"sqlite:///PATH"):
        TrainConfig(storage="optuna.db")
    url = "postgresql+psycopg2://quant:s3cret@127.0.0.1:1/optuna"
    with pytest.raises(ConfigError, match=r"train\.storage") as err:
        open_storage(url, 10)
    assert "s3cret" not in str(err.value) and "127.0.0.1:1/optuna" in str(err.value)


def test_the_storage_defaults_to_sqlite_beside_mlflow_and_a_relative_one_resolves(
    tmp_path, monkeypatch
):
    from helpers import write_config
    from quantlab.config import load_config
    from quantlab.train.search import storage_url

    monkeypatch.setenv("QUANTLAB_HOME", str(tmp_path))
    default = load_config(write_config(tmp_path))
    assert default.train.storage is None
    url = storage_url(default.train, default.paths.experiments)
    assert url == f"sqlite:///{tmp_path / 'experiments' / 'optuna.db'}"
    moved = load_config(write_config(tmp_path, train={"storage": "sqlite:///studies/o.db"}))
    assert moved.train.storage == f"sqlite:///{tmp_path / 'studies' / 'o.db'}"


def test_the_percentile_pruner_keeps_only_the_best_share_of_trials(learnable):
    base = CFG.model_copy(
        update={
            "trials": 10,
            "num_boost_round": 40,
            "prune_startup_trials": 2,
            "report_interval": 2,
        }
    )
    assert isinstance(make_pruner(base), optuna.pruners.PercentilePruner)  # the default
    assert isinstance(
        make_pruner(base.model_copy(update={"pruner": "median"})), optuna.pruners.MedianPruner
    )
    pruned = {}
    for pruner in ("median", "percentile"):
        found, _ = _lightgbm_fold(
            learnable, base.model_copy(update={"pruner": pruner}), SearchSettings()
        )
        pruned[pruner] = found.frame.filter(pl.col("state") == "PRUNED").height
    # Keeping the best quarter at each round stops at least as many trials as keeping half.
    assert pruned["percentile"] >= pruned["median"] and pruned["percentile"] > 0
