"""The `tune` DAG under `airflow dags test`: 2 mapped slots fill the train stage's studies on
a throwaway PostgreSQL database, and the report task finds every study complete.

`airflow dags test` runs the task instances one after another in its own process, so here
slot 0 fills the studies and slot 1 finds them complete; the slots running side by side on
other Celery workers is the stack's test (tests/stack), and several processes on one study is
tests/cli/test_train_tune.py's.
"""

from __future__ import annotations

import json
import sqlite3

import optuna
import polars as pl
import pytest

from helpers import airflow_dags_test, load_sample_klines, write_config
from quantlab.context import RunContext
from quantlab.features import build_features
from quantlab.labels import build_labels
from quantlab.train.tune import study_names, with_trials

TRAIN = {
    "folds": 3,
    "trials": 8,  # the DAG run asks for 4 (params), a different study set than the config's
    "num_boost_round": 20,
    "embargo_bars": 6,
    "prune_warmup_rounds": 4,
    "prune_startup_trials": 2,
    "report_interval": 2,
    "heartbeat_s": 2,
}


@pytest.mark.postgres
def test_two_mapped_slots_fill_the_stages_studies_on_postgres(tmp_path, postgres_url):
    config = write_config(tmp_path, train={**TRAIN, "storage": postgres_url})
    ctx = RunContext.load(config)
    bars = pl.concat(
        [load_sample_klines(s, ("2023-02", "2023-03")) for s in ("BTCUSDT", "ETHUSDT")]
    )
    features = ctx.catalog.write(
        "features", build_features(bars, ctx.config.features), stage="features", config_hash="t"
    )
    labels = ctx.catalog.write(
        "labels", build_labels(bars, ctx.config.labels), stage="labels", config_hash="t"
    )
    home = tmp_path / "airflow"
    conf = json.dumps({"workers": 2, "trials": 4})
    result = airflow_dags_test(
        home, "tune", "-c", conf, env={"QUANTLAB_CONFIG": str(config)}, timeout=900
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]

    with sqlite3.connect(home / "airflow.db") as db:
        states = db.execute(
            "SELECT task_id, map_index, state FROM task_instance ORDER BY task_id, map_index"
        ).fetchall()
        returned = {
            (task_id, map_index): json.loads(value)
            for task_id, map_index, value in db.execute(
                "SELECT task_id, map_index, value FROM xcom WHERE key = 'return_value'"
            )
        }
    assert states == [
        ("plan", -1, "success"),
        ("report", -1, "success"),
        ("tune_slot", 0, "success"),
        ("tune_slot", 1, "success"),
    ]

    # The studies are the train stage's own for these inputs with 4 trials: the stage reuses them.
    names = study_names(
        RunContext(config=with_trials(ctx.config, 4), catalog=ctx.catalog), features, labels
    )
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        assert sorted(optuna.get_all_study_names(storage)) == sorted(names) and len(names) == 3
        per_study = {n: optuna.load_study(study_name=n, storage=storage).trials for n in names}
    finally:
        storage.engine.dispose()
    trials = [t for ts in per_study.values() for t in ts]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert not [t for t in trials if t.state.name == "RUNNING"]
    for name, ts in per_study.items():
        assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in ts) >= 4, name

    # Each slot reports the trials that carry its worker index; together, every finished trial.
    slots = [returned[("tune_slot", i)] for i in (0, 1)]
    assert [s["worker"] for s in slots] == [0, 1]
    assert sum(s["trials"] for s in slots) == len(finished)
    assert {t.user_attrs["worker"] for t in finished} <= {0, 1}
    report = returned[("report", -1)]
    assert report["studies"] == 3 and report["finished"] == len(finished)
    assert report["trials_per_minute"] > 0
