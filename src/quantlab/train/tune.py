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
from datetime import datetime
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
    first_start: datetime | None = None  # the first trial's start
    last_finish: datetime | None = None  # the last finished (complete or pruned) trial's end

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    @property
    def trials_per_minute(self) -> float | None:
        return _per_minute(self.finished, self.first_start, self.last_finish)


@dataclass(frozen=True)
class TuneReport:
    storage: str  # masked
    target: int  # finished trials each study must hold
    studies: list[StudyState]
    exit_codes: list[int | None]  # per worker; negative: killed by that signal

    @property
    def done(self) -> bool:
        return all(s.finished >= self.target for s in self.studies)

    @property
    def short(self) -> list[StudyState]:
        """The studies holding fewer than `target` finished trials."""
        return [s for s in self.studies if s.finished < self.target]

    @property
    def trials_per_minute(self) -> float | None:
        """Finished trials of every study over the span from the first trial's start to the
        last one's end, as the storage recorded them (whoever ran them, wherever)."""
        starts = [s.first_start for s in self.studies if s.first_start is not None]
        ends = [s.last_finish for s in self.studies if s.last_finish is not None]
        total = sum(s.finished for s in self.studies)
        return _per_minute(total, min(starts, default=None), max(ends, default=None))


def _per_minute(trials: int, start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end <= start:
        return None
    return trials / ((end - start).total_seconds() / 60)


def with_trials(config: Config, trials: int | None) -> Config:
    """`config` with `train.trials` set to `trials` (None: as configured)."""
    if trials is None:
        return config
    return config.model_copy(update={"train": config.train.model_copy(update={"trials": trials})})


def tune_worker(
    config: Config, features: DatasetRef, labels: DatasetRef, worker: int, threads: int
) -> None:
    """One worker's share, in this process: the stage's walk-forward on the stage's studies,
    its own seed, `threads` threads per fit. A `train tune` process and a `tune` DAG slot
    each run it."""
    from quantlab.catalog import Catalog
    from quantlab.train.models import use_threads

    use_threads(threads)
    from quantlab.train.stage import stage_key, walk_forward_args
    from quantlab.train.walkforward import walk_forward

    ctx = RunContext(config=config, catalog=Catalog.from_paths(config.paths))
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


def tune(
    ctx: RunContext,
    features: DatasetRef,
    labels: DatasetRef,
    workers: int,
    threads: int | None = None,
) -> TuneReport:
    """Run `workers` processes on the stage's studies for `features` x `labels` until each
    study holds `train.trials` finished (complete + pruned) trials; `threads` per fit (None:
    `worker_threads(workers)`)."""
    config = ctx.config
    url = check_workers(config, workers)
    open_storage(url, config.train.heartbeat_s)  # fail here, clearly, if it cannot be reached
    names = study_names(ctx, features, labels)
    # spawn, not fork: a forked child inherits the parent's OpenMP and database state.
    spawn = multiprocessing.get_context("spawn")
    threads = threads or worker_threads(workers)
    procs = [
        spawn.Process(
            target=tune_worker, args=(config, features, labels, i, threads), name=f"tune-{i}"
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return TuneReport(
        storage=masked(url),
        target=config.train.trials,
        studies=settle_studies(config, names),
        exit_codes=[p.exitcode for p in procs],
    )


def worker_threads(workers: int) -> int:
    """Threads per fit when `workers` workers share this machine's cores: one worker keeps
    the fits' own thread count."""
    return THREADS if workers == 1 else max(1, (os.cpu_count() or 1) // workers)


def study_names(ctx: RunContext, features: DatasetRef, labels: DatasetRef) -> list[str]:
    """The train stage's studies on `features` x `labels`: one per model and fold (a
    per-symbol run has a model per symbol; a symbol that a fold does not test has no study
    there, and the report counts the ones that exist)."""
    from quantlab.train.stage import stage_key, walk_forward_args
    from quantlab.train.walkforward import model_name

    config = ctx.config
    key = stage_key(ctx, [features, labels])
    args = walk_forward_args(ctx, features, labels)
    per_symbol = sorted(args["data"]["symbol"].unique()) if config.train.per_symbol else [None]
    prefix = search_settings(config, key).study_prefix
    return [
        study_name(prefix, model_name(kind, symbol), s.fold)
        for kind in config.train.models
        for symbol in per_symbol
        for s in args["splits"]
    ]


def settle_studies(config: Config, names: list[str]) -> list[StudyState]:
    """The states of the studies `names` in `train.storage`, once every worker has exited."""
    url = storage_url(config.train, config.paths.experiments)
    heartbeat_s = config.train.heartbeat_s
    return _settle(open_storage(url, heartbeat_s), names, heartbeat_s)


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
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [
        t.datetime_complete
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.datetime_complete is not None
    ]
    return StudyState(
        name,
        complete=count(TrialState.COMPLETE),
        pruned=count(TrialState.PRUNED),
        failed=count(TrialState.FAIL),
        running=count(TrialState.RUNNING),
        best_value=min(values, default=None),
        first_start=min(starts, default=None),
        last_finish=max(ends, default=None),
    )


def report_lines(report: TuneReport) -> list[str]:
    """The report as `train tune` and the `tune` DAG print it: a row per study (complete,
    pruned, failed, running, best, trials per minute), then the whole set's trials per minute."""
    lines = [
        f"{'study':<48} {'complete':>8} {'pruned':>7} {'failed':>7} {'running':>8} "
        f"{'best':>10} {'trials/min':>10}"
    ]
    for s in report.studies:
        best = "-" if s.best_value is None else f"{s.best_value:.5f}"
        rate = "-" if s.trials_per_minute is None else f"{s.trials_per_minute:.1f}"
        lines.append(
            f"{s.name:<48} {s.complete:>8} {s.pruned:>7} {s.failed:>7} {s.running:>8} "
            f"{best:>10} {rate:>10}"
        )
    rate = report.trials_per_minute
    finished = sum(s.finished for s in report.studies)
    lines.append(
        f"{finished} finished trials in {len(report.studies)} studies"
        + ("" if rate is None else f", {rate:.1f} trials per minute (first start to last end)")
    )
    return lines
