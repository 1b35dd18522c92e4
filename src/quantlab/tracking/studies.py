"""Optuna studies as MLflow artifacts: a summary, every trial as a table, and the plots.

Under `optuna/` on the run: `summary.json` (trials by state and the best value, per study
and in all), `trials.csv` (every trial: what a deflated Sharpe needs), and two self-contained
HTML pages, `optimization_history.html` and `param_importances.html`, one figure per study.
Plotly figures are HTML because PNG needs kaleido, which the lock lacks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import polars as pl

from quantlab.tracking.redact import Redactor
from quantlab.tracking.runs import _client

FOLDER = "optuna"
TRIALS_ARTIFACT = f"{FOLDER}/trials.csv"
SUMMARY_ARTIFACT = f"{FOLDER}/summary.json"
HISTORY_ARTIFACT = f"{FOLDER}/optimization_history.html"
IMPORTANCE_ARTIFACT = f"{FOLDER}/param_importances.html"
# Below this many completed trials a parameter importance ranks noise (PED-ANOVA compares
# the best trials' parameters against all of them), so the page says so instead.
MIN_TRIALS_FOR_IMPORTANCE = 4


def load_studies(storage: str, names: Sequence[str]) -> list[Any]:
    """The studies `names` from an Optuna storage URL (SQLite, PostgreSQL), read only."""
    import optuna

    return [optuna.load_study(study_name=name, storage=storage) for name in names]


def study_summary(studies: Sequence[Any]) -> dict[str, Any]:
    """Per study: direction, trials by state, the best value; and the totals over studies."""
    import optuna

    rows, total = [], Counter()
    for study in studies:
        states = Counter(t.state.name for t in study.trials)
        total.update(states)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        rows.append(
            {
                "study": study.study_name,
                "direction": study.direction.name.lower(),
                "trials": len(study.trials),
                "states": dict(states),
                "best_value": study.best_value if complete else None,
                "best_params": study.best_params if complete else None,
            }
        )
    return {"studies": rows, "trials": sum(total.values()), "states": dict(total)}


def trials_table(studies: Sequence[Any]) -> pl.DataFrame:
    """Every trial of `studies`: study, number, state, value, duration_s, params (JSON) and
    its user attributes; for runs whose walk-forward hands over no trials table of its own."""
    rows = []
    for study in studies:
        for t in study.trials:
            duration = t.duration.total_seconds() if t.duration is not None else None
            rows.append(
                {
                    "study": study.study_name,
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value,
                    "duration_s": duration,
                    "params": json.dumps(t.params, sort_keys=True),
                    "user_attrs": json.dumps(t.user_attrs, sort_keys=True, default=str),
                }
            )
    schema = {
        "study": pl.String,
        "number": pl.Int64,
        "state": pl.String,
        "value": pl.Float64,
        "duration_s": pl.Float64,
        "params": pl.String,
        "user_attrs": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _csv(trials: pl.DataFrame) -> str:
    """`trials` as CSV; a nested column (a params struct or list) goes as JSON text."""
    encoded = []
    for name, dtype in trials.schema.items():
        if isinstance(dtype, pl.Struct):
            encoded.append(pl.col(name).struct.json_encode())
        elif dtype.is_nested():
            encoded.append(
                pl.col(name).map_elements(lambda v: json.dumps(v.to_list()), return_dtype=pl.String)
            )
    return trials.with_columns(encoded).write_csv()


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<h2>{name}</h2>\n{html}" for name, html in sections)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )


def _completed(study: Any) -> int:
    import optuna

    return sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def study_pages(studies: Sequence[Any]) -> dict[str, str]:
    """The optimisation history and parameter importance pages, one section per study; the
    plotly library is embedded once per page, so the pages open offline."""
    from optuna.visualization import plot_optimization_history, plot_param_importances

    history, importance = [], []
    embedded = {"history": False, "importance": False}

    def figure(fig: Any, page: str) -> str:
        html = fig.to_html(full_html=False, include_plotlyjs=not embedded[page])
        embedded[page] = True
        return html

    for study in studies:
        history.append((study.study_name, figure(plot_optimization_history(study), "history")))
        done = _completed(study)
        varied = {k for t in study.trials for k in t.params}
        if done < MIN_TRIALS_FOR_IMPORTANCE or not varied:
            importance.append(
                (
                    study.study_name,
                    f"<p>No importance: {done} completed trial(s) over "
                    f"{len(varied)} parameter(s); it needs at least {MIN_TRIALS_FOR_IMPORTANCE} "
                    "completed trials of a searched parameter (raise train.trials).</p>",
                )
            )
        else:
            importance.append(
                (study.study_name, figure(plot_param_importances(study), "importance"))
            )
    return {
        HISTORY_ARTIFACT: _page("Optuna optimisation history", history),
        IMPORTANCE_ARTIFACT: _page("Optuna parameter importances", importance),
    }


def log_studies(
    run_id: str,
    studies: Sequence[Any],
    trials: pl.DataFrame | None = None,
    *,
    redactor: Redactor,
    client: Any | None = None,
) -> str:
    """Log `studies`' summary, trials table (`trials`, else one built from the studies) and
    plots to `run_id`; the artifact path of the trials table."""
    client = _client(client)
    table = trials if trials is not None else trials_table(studies)
    summary = study_summary(studies)
    summary["trials_table_rows"] = table.height
    client.log_text(
        run_id, redactor.text(json.dumps(summary, indent=2, default=str)), SUMMARY_ARTIFACT
    )
    client.log_text(run_id, redactor.text(_csv(table)), TRIALS_ARTIFACT)
    for path, html in study_pages(studies).items():
        client.log_text(run_id, redactor.text(html), path)
    return TRIALS_ARTIFACT
