"""The market_data DAG: keep `klines`, `funding_rates` and `exchange_info` current, run by run.

    symbols ─────────> klines (one mapped task per symbol) ─> validate ─> publish (Asset klines)
    funding_symbols ─> funding_rates (one mapped task per USD-M symbol with funding)
    markets ─────────> exchange_info (one mapped task per market)

Each run ingests the candles that close in its data interval, so clearing or backfilling a
run rewrites the same rows; first, each series catches up from its last stored record (hours
missed while the scheduler was down), at most `catchup_lookback` back: an older hole is
logged with the backfill command to run. Markets, symbols, intervals and the schedule come
from `configs/markets.yaml` ($QUANTLAB_MARKETS); adding a symbol is one line there. A
data-quality failure fails the run without retry, and so does an exchange ban (a retry
would meet it again and lengthen it); exchange hiccups are retried (`_quantlab`). `validate`
checks the newest version this run's klines tasks returned, never the catalog's latest.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, dag, get_current_context, task

from _quantlab import ON_FAILURE, ctx, fail_fast, ref

KLINES = Asset("quantlab://datasets/klines")
DEFAULT_ARGS = {
    "owner": "quantlab",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    **ON_FAILURE,
}


def _settings():
    """The markets config through quantlab's one loader (light: pydantic and YAML only), so the
    schedule keys have one set of defaults; a broken file is an import error naming the key."""
    from quantlab.markets import load_markets

    return load_markets()


_SETTINGS = _settings()


def newest_klines(results: list[dict]) -> dict:
    """The newest `klines` version the mapped klines tasks of this run returned.

    Each task's runs name the version they wrote (or found); the newest holds every symbol's
    rows of this run. Never the catalog's latest: another writer may have added one since.
    """
    refs = [
        run["ref"]  # an IngestReport as a dict: the version it left of its dataset
        for result in results
        for run in result["runs"]
        if run["dataset"] == "klines" and run["ref"]
    ]
    if not refs:
        from quantlab.errors import DatasetNotFound

        raise DatasetNotFound(
            "no klines task of this run returned a klines version; check the symbols in "
            "configs/markets.yaml and the klines tasks' logs"
        )
    return max(refs, key=lambda ref: ref["version"])


def _interval() -> tuple[datetime, datetime]:
    context = get_current_context()
    return context["data_interval_start"], context["data_interval_end"]


@dag(
    dag_id="market_data",
    # A data-interval timetable: every run covers [previous tick, this tick).
    schedule=CronDataIntervalTimetable(_SETTINGS.schedule, timezone="UTC"),
    start_date=datetime.combine(_SETTINGS.start_date, time(0), tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "market-data", "ingest"],
    doc_md=__doc__,
)
def market_data():
    @task
    def symbols() -> list[dict]:
        from quantlab.markets import load_markets

        return load_markets().symbol_tasks()

    @task
    def funding_symbols() -> list[str]:
        from quantlab.markets import load_markets

        return load_markets().funding_symbols()

    @task
    def markets() -> list[str]:
        from quantlab.markets import load_markets

        return load_markets().exchange_info_markets()

    @task(
        max_active_tis_per_dagrun=_SETTINGS.max_active_symbols,
        map_index_template="{{ symbol_label }}",
    )
    def klines(spec: dict) -> dict:
        from quantlab import ingest
        from quantlab.markets import load_markets

        label = f"{spec['market']} {spec['symbol']}"
        get_current_context()["symbol_label"] = label  # type: ignore[index]
        start, end = _interval()
        run_ctx, lookback = ctx(), load_markets().catchup_lookback
        with fail_fast():
            runs = [
                ingest.run_symbol(
                    run_ctx, spec["market"], spec["symbol"], interval, start, end, lookback=lookback
                ).to_dict()
                for interval in spec["intervals"]
            ]
        return {"symbol": spec["symbol"], "market": spec["market"], "runs": runs}

    @task(map_index_template="{{ symbol_label }}")
    def funding_rates(symbol: str) -> dict:
        from quantlab import ingest
        from quantlab.markets import load_markets

        get_current_context()["symbol_label"] = symbol  # type: ignore[index]
        start, end = _interval()
        lookback = load_markets().catchup_lookback
        with fail_fast():
            return ingest.run_funding(
                ctx(), symbol, start, end, refresh=True, lookback=lookback
            ).to_dict()

    @task(map_index_template="{{ market_label }}")
    def exchange_info(market: str) -> dict:
        from quantlab import ingest

        get_current_context()["market_label"] = market  # type: ignore[index]
        with fail_fast():
            return ingest.run_exchange_info(ctx(), market).to_dict()

    @task(retries=0)
    def validate(results: list[dict]) -> dict:
        from quantlab import quality

        _, end = _interval()
        with fail_fast():  # fresh as of this run's interval: a stale symbol fails here
            klines = ref(newest_klines(results))
            checks = quality.run(ctx(), klines, as_of=end)
        return {"klines": klines.to_dict(), "klines_checks": checks.to_dict()}

    @task(outlets=[KLINES])
    def publish(checked: dict, *, outlet_events=None) -> dict:
        # The event carries the validated version, for a DAG scheduled on this Asset.
        outlet_events[KLINES].extra = checked
        return checked

    publish(validate(klines.expand(spec=symbols())))
    funding_rates.expand(symbol=funding_symbols())
    exchange_info.expand(market=markets())


market_data()
