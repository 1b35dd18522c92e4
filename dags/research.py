"""The research DAG: ingest → validate → features → labels → train → backtest → risk → paper.

For a USD-M perpetuals universe, `funding` → `validate_funding` also feed `features` its
funding features; for spot both return `{}` (an empty XCom, which Airflow stores, where None
would be none and log a lookup error) and `features` runs on the klines alone.

Each task calls one quantlab stage and passes dataset references (name and
version), never data. A data-quality failure or an exchange ban fails the run without
retry; exchange hiccups are retried.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from airflow.sdk import dag, task

DEFAULT_ARGS = {
    "owner": "quantlab",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


def _ctx():
    """The run context; first, Airflow's log masker hides every secret quantlab reads."""
    from airflow.sdk.log import mask_secret

    from quantlab.context import RunContext
    from quantlab.secrets import add_masker

    add_masker(mask_secret)

    return RunContext.load()


def _ref(data: dict):
    from quantlab.catalog import DatasetRef

    return DatasetRef.from_dict(data)


@contextlib.contextmanager
def _fail_fast():
    """Bad data or an exchange ban fails the task for good: a retry cannot fix the data, and
    a retry during a ban meets it again (and lengthens it). The message names the ban's end."""
    from airflow.sdk.exceptions import AirflowFailException

    from quantlab.errors import ExchangeBanned, QualityError

    try:
        yield
    except (QualityError, ExchangeBanned) as exc:
        raise AirflowFailException(str(exc)) from exc


def _validated(ref: dict) -> dict:
    """The checks version of a version that passed the gate; bad data fails the task for good."""
    from quantlab import quality

    with _fail_fast():
        return quality.run(_ctx(), _ref(ref)).to_dict()


@dag(
    dag_id="research",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["quantlab", "research"],
    doc_md=__doc__,
)
def research():
    @task
    def ingest() -> dict:
        from quantlab import ingest

        with _fail_fast():
            return ingest.run(_ctx()).to_dict()

    @task(retries=0)
    def validate(klines: dict) -> dict:
        return _validated(klines)

    @task
    def funding() -> dict:
        from quantlab import ingest

        with _fail_fast():
            ref = ingest.run_universe_funding(_ctx())
        return ref.to_dict() if ref is not None else {}

    @task(retries=0)
    def validate_funding(funding: dict) -> dict:
        return _validated(funding) if funding else {}

    @task
    def features(klines: dict, checks: dict, funding: dict, funding_checks: dict) -> dict:
        from quantlab import features

        fr = _ref(funding) if funding else None
        fc = _ref(funding_checks) if funding_checks else None  # features.run insists on it
        return features.run(_ctx(), _ref(klines), _ref(checks), fr, fc).to_dict()

    @task
    def labels(klines: dict, checks: dict) -> dict:
        from quantlab import labels

        return labels.run(_ctx(), _ref(klines), _ref(checks)).to_dict()

    @task
    def train(features: dict, labels: dict) -> dict:
        from quantlab import train

        return train.run(_ctx(), _ref(features), _ref(labels)).to_dict()

    @task
    def backtest(predictions: dict, klines: dict, checks: dict) -> dict:
        from quantlab.backtest import stage

        return stage.run(_ctx(), _ref(predictions), _ref(klines), _ref(checks)).to_dict()

    @task
    def risk(predictions: dict, klines: dict, checks: dict, backtest: dict) -> dict:
        from quantlab import risk

        ctx = _ctx()
        return risk.run(
            ctx, _ref(predictions), _ref(klines), _ref(checks), _ref(backtest)
        ).to_dict()

    @task
    def paper(targets: dict, klines: dict) -> dict:
        from quantlab import paper

        return paper.run(_ctx(), _ref(targets), _ref(klines)).to_dict()

    k = ingest()
    c = validate(k)
    fr = funding()
    k >> fr  # one exchange client at a time
    f = features(k, c, fr, validate_funding(fr))
    lab = labels(k, c)
    f >> lab  # the stages run in the documented order, one at a time on a small machine
    p = train(f, lab)
    b = backtest(p, k, c)
    t = risk(p, k, c, b)
    paper(t, k)


research()
