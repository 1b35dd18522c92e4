"""`quantlab train tune`: workers fill the train stage's studies, which the stage then reuses;
on PostgreSQL a worker killed with kill -9 mid-trial leaves that trial FAIL, not RUNNING."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time

import optuna
import polars as pl
import pytest

from helpers import load_sample_klines, write_config
from quantlab.cli import main
from quantlab.context import RunContext
from quantlab.features import build_features
from quantlab.labels import build_labels

TRAIN = {
    "folds": 3,
    "trials": 4,
    "num_boost_round": 20,
    "embargo_bars": 6,
    "prune_warmup_rounds": 4,
    "prune_startup_trials": 2,
    "report_interval": 2,
}
_MAIN = "import sys; from quantlab.cli import main; sys.exit(main(sys.argv[1:]))"


def _catalog(tmp, **train) -> tuple:
    config = write_config(tmp, train={**TRAIN, **train})
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
    return config, ctx, features, labels


def tune(config, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), "train", "tune", *extra])
    return code, out.getvalue(), err.getvalue()


def _trials(url: str) -> list[tuple[str, optuna.trial.FrozenTrial]]:
    """(study name, trial) for every trial in the storage at `url`."""
    storage = optuna.storages.RDBStorage(url)
    try:
        return [
            (name, t)
            for name in optuna.get_all_study_names(storage)
            for t in optuna.load_study(study_name=name, storage=storage).trials
        ]
    finally:
        storage.engine.dispose()


def test_parallel_workers_on_sqlite_are_refused_with_the_fix(tmp_path):
    config = write_config(tmp_path, train=TRAIN)
    code, _, err = tune(config, "--workers", "2")
    assert code == 2
    assert "SQLite" in err and "train.storage" in err and "postgresql+psycopg2://" in err


def test_one_worker_fills_the_studies_the_stage_then_reuses(tmp_path):
    from quantlab.train import run

    config, ctx, features, labels = _catalog(tmp_path)
    code, out, err = tune(config, "--workers", "1")
    assert code == 0, out + err
    assert "3 studies" in out and "holds 4 finished" in out
    url = f"sqlite:///{tmp_path / 'experiments' / 'optuna.db'}"
    tuned = _trials(url)
    assert len(tuned) == 3 * 4 and {t.state.name for _, t in tuned} <= {"COMPLETE", "PRUNED"}
    # The stage finds every study complete: it runs no trial and records the tuned count.
    predictions = run(ctx, features, labels)
    assert len(_trials(url)) == len(tuned)
    assert ctx.catalog.lineage(predictions).extra["trials"] == 3 * 4


@pytest.mark.postgres
def test_a_worker_killed_mid_trial_leaves_it_failed_and_the_study_completes(tmp_path, postgres_url):
    config, *_ = _catalog(tmp_path, storage=postgres_url, heartbeat_s=1, trials=6)
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, "--config", str(config), "train", "tune", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        for _, trial in _trials(postgres_url):
            pid = trial.user_attrs.get("pid")
            if trial.state.name != "RUNNING" or pid is None:
                continue
            os.kill(pid, signal.SIGSTOP)  # frozen: it cannot finish the trial before the kill
            if _state(postgres_url, trial) == "RUNNING":
                os.kill(pid, signal.SIGKILL)
                killed = trial
                break
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=600)
    assert killed is not None, f"no trial was seen running: {out}"
    assert proc.returncode == 0, out
    assert "exited with -9" in out
    trials = _trials(postgres_url)
    assert _state(postgres_url, killed) == "FAIL"
    assert not [t for _, t in trials if t.state.name == "RUNNING"]
    finished: dict[str, int] = {}
    for name, t in trials:
        finished[name] = finished.get(name, 0) + (t.state.name in ("COMPLETE", "PRUNED"))
    assert len(finished) == 3 and min(finished.values()) >= 6  # every fold's study completed


def _state(url: str, trial: optuna.trial.FrozenTrial) -> str:
    storage = optuna.storages.RDBStorage(url)
    try:
        return storage.get_trial(trial._trial_id).state.name
    finally:
        storage.engine.dispose()
