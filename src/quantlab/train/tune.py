"""`quantlab train tune`: N worker processes fill the train stage's Optuna studies on one storage.

Each worker walks forward exactly as the stage does (same frame, folds, objective and study
names, from the stage's fingerprint), with its own sampler seed, so the studies it fills are
the ones the stage then finds complete and reuses. The refits a worker does on the way are
thrown away (about one fit per fold against `train.trials` trials).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from quantlab.catalog import DatasetRef
from quantlab.config import Config
from quantlab.context import RunContext
from quantlab.errors import ConfigError
from quantlab.train.models import THREADS
from quantlab.train.search import (
    masked,
    open_storage,
    search_settings,
    storage_url,
    study_name,
)


@dataclass(frozen=True)
class StudyState:
    name: str
    complete: int
    pruned: int
    failed: int
    running: int
    best_value: float | None


@dataclass(frozen=True)
class TuneReport:
    storage: str  # masked
    target: int  # finished trials each study must hold
    studies: list[StudyState]
    exit_codes: list[int | None]  # per worker; negative: killed by that signal

    @property
    def done(self) -> bool:
        return all(s.complete + s.pruned >= self.target for s in self.studies)


def with_trials(config: Config, trials: int | None) -> Config:
    """`config` with `train.trials` set to `trials` (None: as configured)."""
    if trials is None:
        return config
    return config.model_copy(update={"train": config.train.model_copy(update={"trials": trials})})


def _worker(
    config: Config, features: DatasetRef, labels: DatasetRef, worker: int, threads: int
) -> None:
    """One worker process: the stage's walk-forward on the stage's studies, its own seed,
    its share of the cores."""
    from quantlab.catalog import Catalog
    from quantlab.train.models import use_threads

    use_threads(threads)
    from quantlab.train.stage import stage_key, walk_forward_args
    from quantlab.train.walkforward import walk_forward

    ctx = RunContext(config=config, catalog=Catalog(config.paths.catalog))
    args = walk_forward_args(ctx, features, labels)
    key = stage_key(ctx, [features, labels])
    walk_forward(**args, search=search_settings(config, key, worker=worker))


def check_workers(config: Config, workers: int) -> str:
    """The study storage URL, if `workers` processes may share it: SQLite takes one."""
    url = storage_url(config.train, config.paths.experiments)
    if workers < 1:
        raise ConfigError(f"--workers is {workers}; give 1 or more")
    if workers > 1 and url.startswith("sqlite"):
        raise ConfigError(
            f"--workers {workers} needs a database server, and the study storage is SQLite "
            f"({url}); Optuna's FAQ never recommends SQLite for parallel optimisation (its "
            "locks fail under concurrent writers). Set train.storage to "
            "postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB (configs/stack.yaml does), "
            "or run --workers 1"
        )
    return url


def tune(ctx: RunContext, features: DatasetRef, labels: DatasetRef, workers: int) -> TuneReport:
    """Run `workers` processes on the stage's studies for `features` x `labels` until each
    study holds `train.trials` finished (complete + pruned) trials."""
    from quantlab.train.stage import stage_key, walk_forward_args
    from quantlab.train.walkforward import model_name

    config = ctx.config
    url = check_workers(config, workers)
    open_storage(url, config.train.heartbeat_s)  # fail here, clearly, if it cannot be reached
    key = stage_key(ctx, [features, labels])
    args = walk_forward_args(ctx, features, labels)
    # One study per model and fold: a per-symbol run has a model per symbol (a symbol that a
    # fold does not test has no study there; the report counts the ones that exist).
    per_symbol = sorted(args["data"]["symbol"].unique()) if config.train.per_symbol else [None]
    names = [
        study_name(search_settings(config, key).study_prefix, model_name(kind, symbol), s.fold)
        for kind in config.train.models
        for symbol in per_symbol
        for s in args["splits"]
    ]
    # spawn, not fork: a forked child inherits the parent's OpenMP and database state.
    spawn = multiprocessing.get_context("spawn")
    # The workers share the cores: one worker keeps the fits' own thread count.
    threads = THREADS if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    procs = [
        spawn.Process(target=_worker, args=(config, features, labels, i, threads), name=f"tune-{i}")
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return TuneReport(
        storage=masked(url),
        target=config.train.trials,
        studies=_settle(
            open_storage(url, config.train.heartbeat_s), names, config.train.heartbeat_s
        ),
        exit_codes=[p.exitcode for p in procs],
    )


def _settle(storage: Any, names: list[str], heartbeat_s: int) -> list[StudyState]:
    """The studies' states once every worker has exited. A trial still RUNNING belonged to a
    worker that died mid-trial with no survivor left on its study to fail it: wait until its
    heartbeat is stale, then let Optuna mark it FAIL."""
    studies = {}
    for name in names:
        try:
            studies[name] = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # no worker got as far as this study
            continue
    running = (TrialState.RUNNING,)
    if any(s.get_trials(deepcopy=False, states=running) for s in studies.values()):
        time.sleep(2 * heartbeat_s + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            for study in studies.values():
                optuna.storages.fail_stale_trials(study)
    return [_state(name, studies.get(name)) for name in names]


def _state(name: str, study: optuna.Study | None) -> StudyState:
    trials = [] if study is None else study.get_trials(deepcopy=False)
    count = lambda state: sum(t.state == state for t in trials)  # noqa: E731
    values = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return StudyState(
        name,
        complete=count(TrialState.COMPLETE),
        pruned=count(TrialState.PRUNED),
        failed=count(TrialState.FAIL),
        running=count(TrialState.RUNNING),
        best_value=min(values, default=None),
    )
