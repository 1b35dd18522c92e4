"""`train tune` as the `tune` DAG runs it: a plan of N worker slots on the train stage's
studies, one slot's share in the task's own process, and the studies' report.

The slots are `train tune`'s worker processes made into tasks, so an executor spreads them
(on the CeleryExecutor, over workers on other machines): each runs `tune_worker` with its
own index (its own sampler seed) on the same studies in `train.storage`, and stops once every
study holds `train.trials` finished trials, whoever finished them. One slot that completes
completes every study; a slot that dies leaves its running trial to the heartbeat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.train.tune import (
    TuneReport,
    check_workers,
    masked,
    open_storage,
    settle_studies,
    study_names,
    tune_worker,
    with_trials,
    worker_threads,
)


@dataclass(frozen=True)
class Slot:
    """One worker's share of a tuning run: which inputs, which worker of how many."""

    features: DatasetRef
    labels: DatasetRef
    worker: int
    workers: int
    trials: int | None = None  # finished trials per study; None: train.trials
    threads: int | None = None  # threads per fit; None: this machine's cores / workers

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "features": self.features.to_dict(),
            "labels": self.labels.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Slot:
        return cls(
            **{
                **data,
                "features": DatasetRef.from_dict(data["features"]),
                "labels": DatasetRef.from_dict(data["labels"]),
            }
        )


def _tuned(ctx: RunContext, slot: Slot) -> RunContext:
    """`ctx` with the slot's trial count: part of the stage's fingerprint, so of the names."""
    return RunContext(config=with_trials(ctx.config, slot.trials), catalog=ctx.catalog)


def plan_slots(
    ctx: RunContext,
    workers: int,
    *,
    trials: int | None = None,
    features: int | None = None,
    labels: int | None = None,
    threads: int | None = None,
) -> list[Slot]:
    """`workers` slots on the studies of `features` x `labels` (versions; None: the latest).
    Fails first, with the fix, where the slots could not share the storage (SQLite with more
    than one) or it cannot be reached."""
    if trials is not None and trials < 1:
        from quantlab.errors import ConfigError

        raise ConfigError(f"trials is {trials}; give 1 or more (or null: train.trials)")
    config = with_trials(ctx.config, trials)
    url = check_workers(config, workers)
    open_storage(url, config.train.heartbeat_s)
    refs = [
        ctx.catalog.latest(name) if version is None else DatasetRef(name, version)
        for name, version in (("features", features), ("labels", labels))
    ]
    return [
        Slot(*refs, worker=i, workers=workers, trials=trials, threads=threads)
        for i in range(workers)
    ]


def run_slot(ctx: RunContext, slot: Slot) -> dict[str, Any]:
    """Run the slot's share in this process; what it finished (its trials, by its index)."""
    ctx = _tuned(ctx, slot)
    threads = slot.threads or worker_threads(slot.workers)
    tune_worker(ctx.config, slot.features, slot.labels, slot.worker, threads)
    return {"worker": slot.worker, "threads": threads, "trials": _trials_of(ctx, slot)}


def _trials_of(ctx: RunContext, slot: Slot) -> int:
    """Finished trials that carry this slot's worker index (a retried slot's too)."""
    import optuna
    from optuna.trial import TrialState

    from quantlab.train.search import storage_url

    config = ctx.config
    storage = open_storage(
        storage_url(config.train, config.paths.experiments), config.train.heartbeat_s
    )
    count = 0
    for name in study_names(ctx, slot.features, slot.labels):
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        count += sum(
            t.user_attrs.get("worker") == slot.worker
            for t in study.get_trials(deepcopy=False, states=states)
        )
    return count


def report_slots(ctx: RunContext, slot: Slot) -> TuneReport:
    """The studies the slots filled (any slot of the plan names them), settled: a trial left
    RUNNING by a dead slot is failed once its heartbeat is stale."""
    from quantlab.train.search import storage_url

    ctx = _tuned(ctx, slot)
    config = ctx.config
    return TuneReport(
        storage=masked(storage_url(config.train, config.paths.experiments)),
        target=config.train.trials,
        studies=settle_studies(config, study_names(ctx, slot.features, slot.labels)),
        exit_codes=[],  # tasks, not processes: Airflow holds each slot's state
    )
