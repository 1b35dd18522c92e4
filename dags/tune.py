"""The `tune` DAG: `quantlab train tune --workers N` as mapped tasks.

    plan → tune_slot[0..N-1] → report

`plan` checks the study storage (`train.storage`; more than one slot needs PostgreSQL) and
names the inputs (the latest features and labels unless the params give versions); each
`tune_slot` runs one worker's share of the train stage's Optuna studies (the stage's own
study names, its own sampler seed), so under the CeleryExecutor the slots spread over the
workers and all fill the same studies; `report` logs every study (complete, pruned, failed,
trials per minute) and fails if one holds fewer than `train.trials` finished trials. It runs
even when a slot failed: a slot that completes completes every study. Triggered by hand
with params `workers` (slots), `trials` (null: `train.trials`), `features`/`labels`
(versions; null: the latest) and `threads` (per fit; null: the cores / workers).
No catalog pool: the slots only read the catalog, and one pool slot would serialise them.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

from _quantlab import DEFAULT_ARGS, ctx, fail_fast

_VERSION = Param(None, type=["null", "integer"], minimum=0)


@dag(
    dag_id="tune",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "train", "tune"],
    params={
        "workers": Param(2, type="integer", minimum=1, description="mapped tune_slot tasks"),
        "trials": Param(None, type=["null", "integer"], minimum=1),
        "features": _VERSION,
        "labels": _VERSION,
        "threads": Param(None, type=["null", "integer"], minimum=1),
    },
    doc_md=__doc__,
)
def tune():
    @task
    def plan() -> list[dict]:
        from quantlab.train.tune_slots import plan_slots

        p = get_current_context()["params"]
        with fail_fast():
            slots = plan_slots(
                ctx(),
                p["workers"],
                trials=p["trials"],
                features=p["features"],
                labels=p["labels"],
                threads=p["threads"],
            )
        return [s.to_dict() for s in slots]

    @task
    def tune_slot(slot: dict) -> dict:
        from quantlab.train.tune_slots import Slot, run_slot

        with fail_fast():
            return run_slot(ctx(), Slot.from_dict(slot))

    @task(trigger_rule="all_done")
    def report(slots: list[dict]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from quantlab.train.tune import report_lines
        from quantlab.train.tune_slots import Slot, report_slots

        with fail_fast():
            out = report_slots(ctx(), Slot.from_dict(slots[0]))
        print(f"{len(out.studies)} studies in {out.storage}")
        print("\n".join(report_lines(out)))
        if not out.done:
            short = ", ".join(f"{s.name} ({s.finished})" for s in out.short)
            # A retry reads the same studies; a new run of the DAG finishes them.
            raise AirflowFailException(
                f"{len(out.short)} studies hold fewer than {out.target} finished trials: "
                f"{short}; trigger `tune` again to finish them"
            )
        return {
            "studies": len(out.studies),
            "finished": sum(s.finished for s in out.studies),
            "trials_per_minute": out.trials_per_minute,
        }

    slots = plan()
    tune_slot.expand(slot=slots) >> report(slots)


tune()
