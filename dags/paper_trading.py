"""The paper_trading DAG: each new validated candle → the champion's signals → sizing → orders →
venue → fills → ledger → reconciliation.

    bars ─> features ─> score_live ─> signals ─> paper

Scheduled on the market-data Asset `quantlab://datasets/klines`: the market_data DAG publishes
each validated klines version, and its event carries the version (a run triggered by hand
takes the catalog's newest validated one). `features` rebuilds the features on those bars,
`score_live` has the champion score the bars newer than its training (the model monitor's
stage), `signals` sizes the champion's scores with the risk stage's one sizing function
(`quantlab.execution.signals`), and `paper` trades them on `paper.venue` — the paper venue, or
Binance's spot testnet through the signed adapter — reconciling the ledger before and after
(`quantlab.execution.stage`). `quantlab paper status` shows the account.

max_active_runs=1 and the ledger's advisory lock keep two sessions from ever trading at once.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, dag, get_current_context, task

from _quantlab import CATALOG_POOL, DEFAULT_ARGS, ctx, fail_fast, ref

KLINES = Asset("quantlab://datasets/klines")


@dag(
    dag_id="paper_trading",
    schedule=[KLINES],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "paper"],
    doc_md=__doc__,
)
def paper_trading():
    @task
    def bars() -> dict:
        """The klines version the triggering event validated, else the newest validated one."""
        from quantlab.execution.signals import newest_inputs

        events = get_current_context().get("triggering_asset_events")
        try:
            mine = list(events[KLINES]) if events else []
        except KeyError:  # triggered by hand: no event for the Asset
            mine = []
        extra = next((e.extra for e in reversed(mine) if e.extra), None)
        with fail_fast():
            return newest_inputs(ctx(), extra)

    @task(pool=CATALOG_POOL)
    def features(inputs: dict) -> dict:
        from quantlab.pipeline import STAGES, run_stage

        with fail_fast():
            out = run_stage(
                ctx(),
                STAGES["features"],
                [ref(inputs["klines"]), ref(inputs["klines_checks"]), None, None],
            )
        return out.to_dict()

    @task(pool=CATALOG_POOL)
    def score_live(features: dict) -> dict:
        from quantlab.lifecycle import live

        with fail_fast():
            out = live.run(ctx(), ref(features))
        return out.to_dict() if out is not None else {}

    @task(pool=CATALOG_POOL)
    def signals(inputs: dict, live: dict) -> dict:
        from quantlab.execution import signals

        with fail_fast():
            return signals.run(
                ctx(), ref(inputs["klines"]), ref(inputs["klines_checks"]), ref(live)
            ).to_dict()

    @task(pool=CATALOG_POOL)
    def paper(inputs: dict, targets: dict) -> dict:
        from quantlab.execution import stage
        from quantlab.execution.signals import predictions_of

        with fail_fast():
            c = ctx()
            tgt = ref(targets)
            out = stage.run(
                c, tgt, predictions_of(c, tgt), ref(inputs["klines"]), ref(inputs["klines_checks"]),
                ref(inputs["exchange_info"]), ref(inputs["exchange_info_checks"]),
            )  # fmt: skip
        return out.to_dict()

    checked = bars()
    paper(checked, signals(checked, score_live(features(checked))))


paper_trading()
