"""What every quantlab task needs: the run context, refs from XComs, and one rule for failures.

A module beside the DAG files that defines no DAG (the DAG processor imports it and finds
none; an `.airflowignore` entry would cost a deprecation warning on every parse). The DAG
processor and the task runner put this folder on `sys.path`. At parse time it imports only
`quantlab.errors`, which imports nothing heavy.

The rule, one table for every DAG (`ACTIONS`): an error a rerun cannot fix fails the task for
good (Airflow's `AirflowFailException`, no retry); a transient one is retried under the task's
`retries`. An error not in the table is retried too, as Airflow does by default.

    error                   action  why
    ConfigError             fail    the YAML is wrong; fix it first
    QualityError            fail    the data failed the gate; a rerun reads the same data
    SchemaError             fail    the data cannot be read as its schema; same
    ExchangeBanned          fail    a retry during a ban meets it again and lengthens it
    PermanentExchangeError  fail    the exchange will never accept the request
    OrderRejected           fail    the venue refused the order (a filter, the balance)
    TemporaryExchangeError  retry   429 / 5xx / timeout on a read
    OrderStatusUnknown      retry   the rerun resolves it: an order task reconciles by client
                                    order id before it submits, and resubmits only under the
                                    same id, so a retry cannot place a second order
    ChecksumMismatch        retry   a fresh download is the fix
    AlertDeliveryError      retry   the webhook did not take the alerts; they stay pending
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from _alerts import QuantlabNotifier
from quantlab.errors import (
    AlertDeliveryError,
    ChecksumMismatch,
    ConfigError,
    ExchangeBanned,
    LedgerBusy,
    OrderRejected,
    OrderStatusUnknown,
    PermanentExchangeError,
    QualityError,
    QuantlabError,
    SchemaError,
    TemporaryExchangeError,
)

if TYPE_CHECKING:
    from quantlab.catalog import DatasetRef
    from quantlab.context import RunContext
    from quantlab.pipeline import Stage

Action = Literal["fail", "retry"]

ACTIONS: dict[type[QuantlabError], Action] = {
    ConfigError: "fail",
    QualityError: "fail",
    SchemaError: "fail",
    ExchangeBanned: "fail",
    PermanentExchangeError: "fail",
    OrderRejected: "fail",
    TemporaryExchangeError: "retry",
    OrderStatusUnknown: "retry",
    LedgerBusy: "fail",  # another paper session holds the ledger: never two trading at once
    ChecksumMismatch: "retry",
    AlertDeliveryError: "retry",  # the webhook refused or timed out: the alerts stay pending
}


def action_for(exc: BaseException) -> Action:
    """What a task does with `exc`: the entry of its nearest class in `ACTIONS`, else retry."""
    for cls in type(exc).__mro__:
        if cls in ACTIONS:
            return ACTIONS[cls]
    return "retry"


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """Turn an error that no retry can fix into Airflow's fail-without-retry, message kept."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except Exception as exc:
        if action_for(exc) == "fail":
            raise AirflowFailException(str(exc)) from exc
        raise


def ctx() -> RunContext:
    """The run context; first, Airflow's log masker hides every secret quantlab reads."""
    from airflow.sdk.log import mask_secret

    from quantlab.context import RunContext
    from quantlab.secrets import add_masker

    add_masker(mask_secret)
    return RunContext.load()


def ref(data: dict | None) -> DatasetRef | None:
    """The dataset version an upstream task returned; None for `{}`, a task that had nothing.

    (An empty dict, not None: Airflow stores it as an XCom, where None would be none.)
    """
    from quantlab.catalog import DatasetRef

    return DatasetRef.from_dict(data) if data else None


# What a task of the research-side DAGs (research, retrain, model_monitor, paper_trading) does
# when it fails: retried twice with backoff, unless `fail_fast` says no retry can help.
# A task that failed for good is announced at once (the log, and the webhook when one is
# configured); the monitoring DAG alerts on tasks failing again and again.
ON_FAILURE = {"on_failure_callback": [QuantlabNotifier()]}

DEFAULT_ARGS = {
    "owner": "quantlab",
    **ON_FAILURE,
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}

# One slot shared by every task of the DAGs that write the research datasets (research,
# retrain_incremental, retrain_full): two of them never run a stage at once, so a retrain
# never reads a half-finished research run's inputs nor judges a challenger the other is
# judging. `make airflow` and the stack create it (`airflow pools set`).
CATALOG_POOL = "quantlab_catalog"


def stage_task(stage: Stage, *, pool: str | None = None):
    """A task that runs `stage` on the versions its upstream tasks returned."""
    from airflow.sdk import task

    gate = {"retries": 0} if stage.gate else {}  # a failed gate: a rerun reads the same data
    where = {"pool": pool} if pool else {}

    @task(task_id=stage.name, doc_md=f"`{stage.call}` → `{stage.output}`", **gate, **where)
    def run_stage(*inputs: dict) -> dict:
        from quantlab.pipeline import run_stage

        with fail_fast():
            out = run_stage(ctx(), stage, [ref(data) for data in inputs])
        return out.to_dict() if out is not None else {}

    return run_stage


def wire(stages: tuple[Stage, ...], *, pool: str | None = None) -> dict:
    """One task per stage, each downstream of the stages it takes and waits for."""
    tasks: dict = {}
    for stage in stages:
        inputs = [tasks[name.rstrip("?")] for name in stage.inputs]
        tasks[stage.name] = stage_task(stage, pool=pool)(*inputs)
        for name in stage.after:  # order only: one exchange client, one heavy stage at a time
            tasks[name] >> tasks[stage.name]
    return tasks


def lifecycle_timetable(which: str, default: str | None = None):
    """`lifecycle.schedules.<which>` (incremental, full, monitor) as a cron timetable in the
    configured timezone; when the config leaves it null, `default` (None: run by hand). Read
    at parse time: a config file, no DB or network (tests/dags check)."""
    from airflow.sdk import CronTriggerTimetable

    from quantlab.config import load_config

    schedules = load_config().lifecycle.schedules
    cron = getattr(schedules, which) or default
    return None if cron is None else CronTriggerTimetable(cron, timezone=schedules.timezone)


def config_timetable(section: str):
    """`<section>.schedule` (e.g. monitoring) as a cron timetable in `<section>.timezone`;
    None when the config leaves it null (run by hand). Read at parse time like
    `lifecycle_timetable`."""
    from airflow.sdk import CronTriggerTimetable

    from quantlab.config import load_config

    cfg = getattr(load_config(), section)
    return (
        None if cfg.schedule is None else CronTriggerTimetable(cfg.schedule, timezone=cfg.timezone)
    )
