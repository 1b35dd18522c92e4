"""The summary printed after a research run: datasets, MLflow run, backtest figures, report path."""

from __future__ import annotations

import polars as pl

from quantlab.backtest.stats import headline
from quantlab.catalog import BacktestRun, DatasetRef, RiskRun, TrainingRun
from quantlab.context import RunContext
from quantlab.pipeline import outputs

FINAL = "paper_orders"  # what paper trading booked: one end of the graph


def print_summary(ctx: RunContext) -> int:
    """Print what the newest research run wrote, walking lineage back from its final dataset."""
    catalog = ctx.catalog
    if not catalog.exists(FINAL):
        print(f"no research run found in {catalog.root}; run `make run` first")
        return 1
    # paper trades the targets and the backtest judges them: two ends of one run's graph.
    ends = [catalog.latest(FINAL)]
    if catalog.exists("backtest"):
        ends.append(catalog.latest("backtest"))
    seen = {ref: (ref, lin) for end in ends for ref, lin in catalog.walk_lineage(end)}
    backtest = next((lin for ref, lin in seen.values() if ref.name == "backtest"), None)
    # The backtest's fills, funding and rejections share its inputs; its lineage names them.
    for name, version in (backtest.extra.get("outputs", {}) if backtest else {}).items():
        ref = DatasetRef(name, version)
        seen[ref] = (ref, catalog.lineage(ref))
    chain = list(seen.values())
    print("Datasets (name@version, rows, stage):")
    rank = {name: i for i, name in enumerate(outputs())}  # graph order
    for ref, lin in sorted(chain, key=lambda item: (rank.get(item[0].name, 99), item[0].name)):
        print(
            f"  {ref!s:<22} rows={lin.row_count:<8} stage={lin.stage:<9} created={lin.created_at}"
        )
    by_name = {ref.name: (ref, lin) for ref, lin in chain}
    if "predictions" in by_name:
        trained = TrainingRun.of(by_name["predictions"][1])
        print(f"\nMLflow: experiment '{trained.mlflow_experiment}', run {trained.mlflow_run_id}")
        if trained.trials is not None:
            print(
                f"  tuned: {trained.trials} Optuna trials in all (every fold and model kind), "
                f"seed {trained.seed}"
            )
        shown = ("auc", "macro_f1", "logloss", "rmse", "rank_ic")  # those the target has
        for m in trained.fold_metrics:
            scores = " ".join(
                f"{k}={getattr(m, k):.4f}" for k in shown if getattr(m, k) is not None
            )
            print(f"  {m.model} fold {m.fold}: {scores} train={m.train_rows} test={m.test_rows}")
        print(f"  browse: uv run mlflow ui --backend-store-uri {ctx.config.tracking.uri}")
    if "backtest" in by_name:
        from quantlab.backtest.stage import tearsheet_path

        ref, lin = by_name["backtest"]
        run = BacktestRun.of(lin)
        s = lin.extra.get("stats", {})
        print(
            f"\nBacktest {ref} ({s.get('start', '?')[:10]} to {s.get('end', '?')[:10]}, out of fold):"
        )
        print(f"  {headline(s)}")
        print(
            f"  total_return={_fmt(s.get('total_return'), pct=True)} "
            f"max_drawdown={_fmt(s.get('max_drawdown'), pct=True)} fills={s.get('n_fills', 0)} "
            f"exposure={_fmt(s.get('exposure'), pct=True)}; buy and hold of the universe: "
            f"sharpe={_fmt(s.get('benchmark_sharpe'))} "
            f"total_return={_fmt(s.get('benchmark_total_return'), pct=True)}"
        )
        print(
            f"  costs: fees={s.get('fees', 0):,.2f} slippage={s.get('slippage', 0):,.2f} "
            f"funding={s.get('funding', 0):+,.2f} (positive: received)"
        )
        if s.get("dsr_note"):
            print(f"  {s['trials_note']}\n  {s['dsr_note']}")
        if run.rejections:
            listed = ", ".join(f"{n} {why}" for why, n in run.rejections.items())
            print(f"  orders rejected before the venue: {listed}")
        for kill in run.kills:
            print(f"  kill-switch tripped {kill['open_time']}: {kill['reason']}")
        print(f"  tearsheet: {tearsheet_path(ctx, ref)}")
    traded = catalog.lineage(ends[0]).inputs.get("targets")
    if traded is not None or "targets" in by_name:
        # The targets paper traded: the champion's (a kept challenger's are not traded).
        ref = DatasetRef("targets", traded) if traded is not None else by_name["targets"][0]
        targets = catalog.read(ref)
        newest = targets.filter(pl.col("open_time") == pl.col("open_time").max())
        whose = catalog.extra(ref, RiskRun).champion
        print(
            f"\nTargets {ref}{f' (champion {whose})' if whose else ''} traded for the bar opened "
            f"{newest['open_time'].max()}:"
        )
        for row in newest.sort("symbol").iter_rows(named=True):
            print(
                f"  {row['symbol']:<8} smoothed score {row['score']:+.3f} "
                f"-> target weight {row['target_weight']:+.3f}"
            )
    _print_paper(ctx)
    _print_decisions(ctx)
    return 0


def _print_paper(ctx: RunContext) -> None:
    """The paper account after its newest session: orders, fills, equity, divergence."""
    catalog = ctx.catalog
    ref = catalog.latest(FINAL)
    lin = catalog.lineage(ref)
    extra = lin.extra
    orders = catalog.read(ref)
    print(
        f"\nPaper account '{extra.get('account')}' on the {extra.get('venue')} venue ({ref}; "
        f"`quantlab paper status` for the ledger): {extra.get('bars_traded', 0)} bar(s) traded this "
        f"run, {extra.get('placed', 0)} order(s) placed, trading {extra.get('trading_state')}"
    )
    if extra.get("halted"):
        print(f"  no new orders: {extra['halted']}")
    if orders.height:
        counts = orders.group_by("status").len().sort("status")
        print("  orders by status: " + ", ".join(f"{s} {n}" for s, n in counts.iter_rows()))
        newest = orders.filter(pl.col("decision_time") == pl.col("decision_time").max())
        for row in newest.sort("symbol").iter_rows(named=True):
            print(
                f"  newest: {row['side']:<4} {row['qty']:>12.5f} {row['symbol']:<8} {row['type']:<6} "
                f"{row['status']:<16} (target weight {row['target_weight']:+.3f}, decided at "
                f"{row['reference_price']:.2f})"
            )
    outputs_ = extra.get("outputs", {})
    if "paper_equity" in outputs_:
        equity = catalog.read(DatasetRef("paper_equity", outputs_["paper_equity"]))
        if equity.height:
            fills = DatasetRef("paper_fills", outputs_["paper_fills"])
            print(f"  equity {equity['equity'][-1]:,.2f} at {equity['time'][-1]}; fills in {fills}")
    if extra.get("round_trips"):
        print(
            f"  round trips: {extra['round_trips']}, the entry's direction right in "
            f"{extra['direction_right']:.0%} (paper_round_trips@v{outputs_['paper_round_trips']})"
        )
    if "paper_divergence" in outputs_:
        div_ref = DatasetRef("paper_divergence", outputs_["paper_divergence"])
        print(f"  paper - backtest P&L over the session, by bucket ({div_ref}):")
        for row in catalog.read(div_ref).iter_rows(named=True):
            print(f"    {row['bucket']:<16} {row['value']:>+12.2f}")
        print(f"  report: {catalog.artifacts(div_ref) / 'divergence.html'}")
    for line in extra.get("reconcile_end", []):
        print(f"  reconcile: {line}")


def _print_decisions(ctx: RunContext) -> None:
    """The newest gate decision of each registered model (`quantlab model list` shows all)."""
    if not ctx.catalog.exists("model_decisions"):
        return
    ref = ctx.catalog.latest("model_decisions")
    rows = ctx.catalog.read(ref).sort("decided_at").group_by("model", maintain_order=True).last()
    print(f"\nModel registry ({ref}; `quantlab model list` for every version):")
    for row in rows.sort("model").iter_rows(named=True):
        print(
            f"  {row['model']} v{row['version']}: {row['decision']} ({row['by']}). {row['reason']}"
        )


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2%}" if pct else f"{value:.3f}"
