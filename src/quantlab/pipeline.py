"""The research stage graph, written once: the DAG, `quantlab run [STAGE]` and the summary read it.

    ingest ─> validate ──────────────┬─> features ─> labels ─> train ─> risk ─> backtest
       ├──> funding ─> validate_funding ┘ (USD-M only) ─────────────────────┘
       └──> exchange_info ─> validate_exchange_info ───────────────────────┘

    features, labels ─> regime (after train)
    train, labels, backtest?, regime? ─> promote
    risk, train, ingest, validate, exchange_info, validate_exchange_info, promote? ─> paper (spot)

risk sizes the out-of-fold predictions into targets with the one sizing function live trading
uses; the backtest trades those targets (rounded to the exchange's filters, with fees,
slippage and, on perpetuals, funding); paper trades them bar by bar on the paper venue
(or Binance's spot testnet), once the gate has said whose signals they are. regime trains one
six-class regime model per symbol; promote judges every challenger that train and regime
registered against its champion.

Each stage names the dataset it writes, the stages whose outputs it takes (in the order its
`run` takes them) and its `run` as an import path, resolved only when the stage runs: importing
this module costs nothing, so the Airflow DAG reads the graph at parse time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quantlab.catalog import DatasetRef
    from quantlab.config import Config
    from quantlab.context import RunContext


def uses_funding(config: Config) -> bool:
    """A USD-M perpetuals universe pays funding (the backtest charges it) and may use it as features."""
    return config.universe.market == "futures_um"


@dataclass(frozen=True)
class Stage:
    """One node of the graph.

    `inputs` are stage names; one ending in "?" may be absent (its stage is off or handed on
    nothing) and is then passed as None, while an absent plain input leaves this stage off.
    `after` orders without passing data (one exchange client, one heavy stage at a time).
    `when` turns the stage off for a config; `gate` marks a quality gate, whose failure no
    rerun can fix.
    """

    name: str
    output: str
    call: str
    inputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    when: Callable[[Config], bool] | None = None
    gate: bool = False

    @property
    def upstream(self) -> tuple[str, ...]:
        """Every stage this one waits for: its inputs, then its ordering-only predecessors."""
        return (*(i.rstrip("?") for i in self.inputs), *self.after)

    def resolve(self) -> Callable[..., DatasetRef | None]:
        """The stage's `run`, imported now."""
        module, _, attr = self.call.partition(":")
        return getattr(importlib.import_module(module), attr)


RESEARCH: tuple[Stage, ...] = (
    Stage("ingest", "klines", "quantlab.ingest:run"),
    Stage("validate", "klines_checks", "quantlab.quality:run", ("ingest",), gate=True),
    Stage(
        "funding",
        "funding_rates",
        "quantlab.ingest:run_universe_funding",
        after=("ingest",),
        when=uses_funding,
    ),
    Stage(
        "validate_funding",
        "funding_rates_checks",
        "quantlab.quality:run",
        ("funding",),
        gate=True,
    ),
    Stage(
        "exchange_info",
        "exchange_info",
        "quantlab.ingest:run_universe_exchange_info",
        after=("ingest",),
    ),
    Stage(
        "validate_exchange_info",
        "exchange_info_checks",
        "quantlab.quality:run",
        ("exchange_info",),
        gate=True,
    ),
    Stage(
        "features",
        "features",
        "quantlab.features:run",
        ("ingest", "validate", "funding?", "validate_funding?"),
    ),
    Stage("labels", "labels", "quantlab.labels:run", ("ingest", "validate"), after=("features",)),
    Stage("train", "predictions", "quantlab.train:run", ("features", "labels")),
    Stage("risk", "targets", "quantlab.risk:run", ("train", "ingest", "validate", "labels")),
    Stage(
        "backtest",
        "backtest",
        "quantlab.backtest:run",
        (
            "risk",
            "train",
            "ingest",
            "validate",
            "exchange_info",
            "validate_exchange_info",
            "funding?",
            "validate_funding?",
        ),
    ),
    # One six-class regime model per symbol; after train, so two heavy fits never overlap.
    Stage(
        "regime",
        "regime_predictions",
        "quantlab.regime:run",
        ("features", "labels"),
        after=("train",),
    ),
    # The gate: each challenger this run registered against its champion (quantlab.lifecycle).
    Stage(
        "promote",
        "model_decisions",
        "quantlab.lifecycle.promote:run",
        ("train", "labels", "backtest?", "regime?"),
    ),
    # The newest targets on the paper venue (quantlab.execution), after the gate: only the
    # champion's signals are traded. Spot only: the testnet adapter is Binance spot.
    Stage(
        "paper",
        "paper_orders",
        "quantlab.execution:run",
        (
            "risk",
            "train",
            "ingest",
            "validate",
            "exchange_info",
            "validate_exchange_info",
            "promote?",
        ),
        when=lambda config: config.universe.market == "spot",
    ),
)
STAGES: dict[str, Stage] = {stage.name: stage for stage in RESEARCH}


def outputs() -> list[str]:
    """The datasets the research graph writes, in graph order."""
    return [s.output for s in RESEARCH]


def run_stage(
    ctx: RunContext, node: Stage, inputs: Sequence[DatasetRef | None]
) -> DatasetRef | None:
    """Run one stage on its input versions (`inputs`, in `node.inputs` order; None = absent).

    Returns the version it wrote (or reused), or None when the stage is off for this config,
    lacks a required input, or handed on nothing.
    """
    if len(inputs) != len(node.inputs):
        raise ValueError(f"stage {node.name} takes {len(node.inputs)} inputs, got {len(inputs)}")
    if node.when is not None and not node.when(ctx.config):
        return None
    if any(
        ref is None and not name.endswith("?")
        for name, ref in zip(node.inputs, inputs, strict=True)
    ):
        return None
    return node.resolve()(ctx, *inputs)


def run_research(ctx: RunContext) -> dict[str, DatasetRef]:
    """Run every research stage once, in graph order; the version each one produced, by dataset."""
    produced: dict[str, DatasetRef | None] = {}
    for node in RESEARCH:
        refs = [produced[name.rstrip("?")] for name in node.inputs]
        produced[node.name] = run_stage(ctx, node, refs)
    return {STAGES[name].output: ref for name, ref in produced.items() if ref is not None}


def latest_inputs(ctx: RunContext, node: Stage) -> list[DatasetRef | None]:
    """The latest catalog version of each input of `node`; None for an input off for this config.

    An input that is on but was never written raises DatasetNotFound, naming the stage to run.
    """
    from quantlab.errors import DatasetNotFound

    refs: list[DatasetRef | None] = []
    for name in node.inputs:
        upstream = STAGES[name.rstrip("?")]
        if not _active(ctx.config, upstream):
            refs.append(None)
        elif ctx.catalog.exists(upstream.output):
            refs.append(ctx.catalog.latest(upstream.output))
        elif name.endswith("?"):
            refs.append(None)
        else:
            raise DatasetNotFound(
                f"stage {node.name} needs {upstream.output}, which is not in the catalog; "
                f"run `quantlab run {upstream.name}` first"
            )
    return refs


def _active(config: Config, node: Stage) -> bool:
    """Whether `node` can run for `config`: it is on, and so is each stage it requires."""
    if node.when is not None and not node.when(config):
        return False
    return all(_active(config, STAGES[n]) for n in node.inputs if not n.endswith("?"))


# -- retraining (quantlab.lifecycle.retrain, dags/retrain.py, `quantlab retrain`) ----------
# Full: the research graph from scratch, gate at the end. Incremental: fresh bars and labels,
# then each champion continued on the bars labelled since it was trained, gate inside.
INCREMENTAL = Stage(
    "incremental",
    "holdout_predictions",
    "quantlab.lifecycle.retrain:run_incremental",
    ("features", "labels"),
)
INCREMENTAL_PATH = ("ingest", "validate", "funding", "validate_funding", "features", "labels")
RETRAIN_MODES = ("incremental", "full")


def retrain_graph(mode: str) -> tuple[Stage, ...]:
    """The stages a retrain `mode` (incremental | full) runs, in graph order."""
    if mode == "full":
        return RESEARCH
    if mode == "incremental":
        return (*(STAGES[name] for name in INCREMENTAL_PATH), INCREMENTAL)
    raise ValueError(f"retrain mode {mode!r}; use one of {RETRAIN_MODES}")
