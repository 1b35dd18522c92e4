"""The promotion gate applied: judge each new challenger against its champion, write the
decision on the version (tags) and in `model_decisions`, move `champion` when it passes.

`run` is the pipeline's `promote` stage, after training, the regime models and the backtest.
A version the gate already judged is not judged again (its `gate.decision` tag), so a rerun,
the retrain DAGs and a person's `quantlab model promote` never double-decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.catalog.extras import BacktestRun, ExplainRun, TrainingRun
from quantlab.lifecycle.evaluate import main_truth, regime_truth, score
from quantlab.lifecycle.gate import Decision, Evidence, decide
from quantlab.lifecycle.oos import oos_scores
from quantlab.tracking.registry import ModelRef, Registry, registry_for

if TYPE_CHECKING:
    from quantlab.context import RunContext

DATASET = "model_decisions"


@dataclass(frozen=True)
class Candidate:
    ref: ModelRef  # the challenger version
    family: str  # main | regime
    metric: str
    dsr: float | None = None
    shap_stability: float | None = None
    notes: tuple[tuple[str, str], ...] = ()


def registry(ctx: RunContext) -> Registry:
    return registry_for(ctx.config.tracking.uri)


def truth(ctx: RunContext, labels: pl.DataFrame, family: str) -> pl.DataFrame:
    """The resolved outcomes `family`'s models are scored on."""
    if family == "regime":
        cfg = ctx.config.labels.regime
        if cfg is None:
            raise ValueError("labels.regime is null: there are no regime labels to score")
        return regime_truth(labels, cfg.horizon)
    return main_truth(labels, ctx.config.labels.horizon)


def evidence(
    ctx: RunContext, candidate: Candidate, champion: ModelRef | None, outcomes: pl.DataFrame
) -> Evidence:
    """The challenger's and the champion's metric on the rows both scored out of sample."""
    notes = dict(candidate.notes)
    if champion is None:
        own = oos_scores(ctx.catalog, candidate.ref, candidate.family)
        rows = own.join(outcomes, on=["symbol", "open_time"], how="inner")
        value = score(candidate.family, candidate.metric, rows)
        return Evidence(
            candidate.metric,
            value,
            None,
            rows.height,
            None,
            candidate.dsr,
            candidate.shap_stability,
            notes,
        )
    mine = oos_scores(ctx.catalog, candidate.ref, candidate.family)
    theirs = oos_scores(ctx.catalog, champion, candidate.family)
    keys = (
        mine.select("symbol", "open_time")
        .join(theirs.select("symbol", "open_time"), on=["symbol", "open_time"], how="inner")
        .join(outcomes.select("symbol", "open_time"), on=["symbol", "open_time"], how="inner")
    )
    a = keys.join(mine, on=["symbol", "open_time"]).join(outcomes, on=["symbol", "open_time"])
    b = keys.join(theirs, on=["symbol", "open_time"]).join(outcomes, on=["symbol", "open_time"])
    return Evidence(
        candidate.metric,
        score(candidate.family, candidate.metric, a),
        score(candidate.family, candidate.metric, b),
        keys.height,
        champion.version,
        candidate.dsr,
        candidate.shap_stability,
        notes,
    )


def decision_row(
    name: str, version: int, decision: str, by: str, reason: str, e: Evidence | None, details: str
) -> dict[str, Any]:
    return {
        "model": name,
        "version": version,
        "decision": decision,
        "by": by,
        "reason": reason,
        "metric": e.metric if e else None,
        "challenger_value": e.challenger_value if e else None,
        "champion_value": e.champion_value if e else None,
        "champion_version": e.champion_version if e else None,
        "common_rows": e.common_rows if e else None,
        "dsr": e.dsr if e else None,
        "shap_stability": e.shap_stability if e else None,
        "decided_at": datetime.now(UTC),
        "details": details,
    }


def record(
    ctx: RunContext, rows: list[dict[str, Any]], inputs: list[DatasetRef]
) -> DatasetRef | None:
    """Append decisions to `model_decisions`; the newest version if there is nothing to add."""
    if not rows:
        return ctx.catalog.latest(DATASET) if ctx.catalog.exists(DATASET) else None
    schema = ctx.catalog.registry[DATASET].schema
    frame = pl.DataFrame(rows, schema=dict(schema))
    return ctx.catalog.upsert(DATASET, frame, stage="lifecycle", inputs=inputs)


def judge(ctx: RunContext, reg: Registry, candidate: Candidate, outcomes: pl.DataFrame) -> Decision:
    """Decide on `candidate`, tag the version, move `champion` if it passed; print the verdict."""
    name, version = candidate.ref.name, candidate.ref.version
    champion = reg.champion(name)
    if champion is not None and champion.version == version:  # a person promoted it first
        prev = champion.tags.get("previous_champion")
        champion = reg.version(name, int(prev)) if prev else None
    e = evidence(ctx, candidate, champion, outcomes)
    decision = decide(gate_config(ctx, candidate.family), e)
    reg.set_tags(
        name, version, {**decision.tags(), "gate.decided_at": datetime.now(UTC).isoformat()}
    )
    if decision.promote:
        reg.set_champion(name, version, by="gate")
        prefetch_champion(ctx, reg, name)
    print(f"{name} v{version}: {decision.decision}. {decision.reason}")
    return decision


def prefetch_champion(ctx: RunContext, reg: Registry, name: str) -> None:
    """The champion's files into the serving cache, so its first answer reads a local file."""
    from quantlab.serving.model import prefetch

    if (champion := reg.champion(name)) is not None:
        prefetch(reg, champion, ctx.config.paths.data)


def gate_config(ctx: RunContext, family: str) -> Any:
    gate = ctx.config.lifecycle.gate
    if family == "regime":
        return gate.model_copy(update={"metric": ctx.config.lifecycle.regime.metric})
    return gate


def judge_all(
    ctx: RunContext, candidates: list[Candidate], labels: DatasetRef, inputs: list[DatasetRef]
) -> DatasetRef | None:
    """Judge every candidate not judged yet; record the decisions."""
    reg = registry(ctx)
    pending = [c for c in candidates if "gate.decision" not in c.ref.tags]
    rows = []
    frame = ctx.catalog.read(labels) if pending else None
    for family in sorted({c.family for c in pending}):
        outcomes = truth(ctx, frame, family)
        for candidate in (c for c in pending if c.family == family):
            d = judge(ctx, reg, candidate, outcomes)
            rows.append(
                decision_row(
                    candidate.ref.name,
                    candidate.ref.version,
                    d.decision,
                    "gate",
                    d.reason,
                    d.evidence,
                    d.details(),
                )
            )
    return record(ctx, rows, inputs)


# -- what the pipeline's datasets say about a challenger ---------------------------------


def backtest_dsr(
    ctx: RunContext, predictions: DatasetRef, backtest: DatasetRef | None
) -> tuple[float | None, str]:
    """The DSR of `backtest` if it was built from `predictions`, with a note when not."""
    if backtest is None:
        return None, "no backtest of these predictions yet"
    built_from = {ref for ref, _ in ctx.catalog.walk_lineage(backtest)}
    if predictions not in built_from:
        return None, f"{backtest} was not built from {predictions}"
    stats = ctx.catalog.extra(backtest, BacktestRun).stats
    if stats.dsr is None:
        return None, f"{backtest} carries no deflated Sharpe"
    return float(stats.dsr), ""


def shap_stability(ctx: RunContext, predictions: DatasetRef, kind: str) -> tuple[float | None, str]:
    """The median pairwise rank correlation of `kind`'s fold SHAP, from the training that
    wrote `predictions` (its `feature_importance`, same fingerprint)."""
    fp = ctx.catalog.lineage(predictions).fingerprint
    if not ctx.catalog.exists("feature_importance"):
        return None, "no feature_importance dataset"
    for info in reversed(ctx.catalog.versions("feature_importance")):
        if info.lineage is not None and info.lineage.fingerprint == fp:
            run = ctx.catalog.extra(info.ref, ExplainRun)
            for s in run.stability:
                if s.model == kind and s.output in (0, 2):
                    return s.rank_corr_median, "" if s.rank_corr_median is not None else "undefined"
            return None, f"{info.ref} holds no stability for {kind}"
    return None, f"no feature_importance from the training that wrote {predictions}"


def main_candidates(
    ctx: RunContext, predictions: DatasetRef, backtest: DatasetRef | None
) -> list[Candidate]:
    """The versions the training that wrote `predictions` registered (one, or one per symbol)."""
    cfg = ctx.config.train
    if cfg.register_as is None:
        return []
    extra = ctx.catalog.extra(predictions, TrainingRun)
    if extra.mlflow_run_id is None:
        return []
    reg = registry(ctx)
    names = (
        [cfg.register_as]
        if not cfg.per_symbol
        else [f"{cfg.register_as}-{s}" for s in ctx.config.universe.symbols]
    )
    kind = cfg.models[0]
    dsr, dsr_note = backtest_dsr(ctx, predictions, backtest)
    stab, stab_note = shap_stability(ctx, predictions, kind)
    out = []
    for name in names:
        ref = reg.by_run(name, extra.mlflow_run_id)
        if ref is None:
            continue
        notes = (("dsr", dsr_note), ("shap_stability", stab_note))
        out.append(Candidate(ref, "main", ctx.config.lifecycle.gate.metric, dsr, stab, notes))
    return out


def regime_candidates(ctx: RunContext, regime: DatasetRef | None) -> list[Candidate]:
    """The regime versions the `regime` stage registered (its extra `registered`)."""
    if regime is None:
        return []
    registered = ctx.catalog.lineage(regime).extra.get("registered", {}) or {}
    reg = registry(ctx)
    notes = (("dsr", "a regime model is not traded"), ("shap_stability", "not computed"))
    return [
        Candidate(
            reg.version(name, int(v)),
            "regime",
            ctx.config.lifecycle.regime.metric,
            None,
            None,
            notes,
        )
        for name, v in sorted(registered.items())
    ]


def run(
    ctx: RunContext,
    predictions: DatasetRef,
    labels: DatasetRef,
    backtest: DatasetRef | None = None,
    regime: DatasetRef | None = None,
) -> DatasetRef | None:
    """The `promote` stage: judge the challengers this pipeline run registered."""
    candidates = [*main_candidates(ctx, predictions, backtest), *regime_candidates(ctx, regime)]
    inputs = [r for r in (predictions, labels, regime, backtest) if r is not None]
    return judge_all(ctx, candidates, labels, inputs)


def details_of(ref: ModelRef) -> list[dict[str, Any]]:
    raw = ref.tags.get("gate.checks")
    return json.loads(raw) if raw else []
