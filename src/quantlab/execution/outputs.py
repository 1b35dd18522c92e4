"""The ledger as versioned datasets after each paper session, and the divergence report.

`paper_orders`, `paper_fills` and `paper_equity` are snapshots of the account in the ledger; a
version is written only when the ledger moved (its digest is part of the fingerprint).
On the paper venue, `paper_divergence` holds the backtest-vs-paper P&L gap of the session's
window split into buckets, with the offline HTML report as the version's artifact and both in
MLflow.
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl

from quantlab.catalog import DATASETS, DatasetRef
from quantlab.context import RunContext
from quantlab.execution import divergence, divergence_html, recorder
from quantlab.execution.ledger import Ledger
from quantlab.execution.session import SessionInputs
from quantlab.schema import UTC_MS
from quantlab.vocab import bars_per_year

DIVERGENCE_HTML = "divergence.html"


def _as_dataset(name: str, df: pl.DataFrame, account: str, times: dict[str, str]) -> pl.DataFrame:
    """A ledger frame as dataset `name` declares it: ms times as UTC datetimes, the account
    column, the declared columns in the declared order (one list: `catalog/_paper_datasets`)."""
    df = df.with_columns(
        *(
            pl.from_epoch(pl.col(src), time_unit="ms").cast(UTC_MS).alias(dst)
            for src, dst in times.items()
        ),
        pl.lit(account).alias("account"),
    )
    return df.select(list(DATASETS[name].schema))


def orders_frame(ledger: Ledger, account: str) -> pl.DataFrame:
    times = {
        "decision_ms": "decision_time",
        "created_ms": "created_time",
        "updated_ms": "updated_time",
    }
    return _as_dataset("paper_orders", ledger.orders_frame(account), account, times).sort(
        "created_time", "client_id"
    )


def fills_frame(ledger: Ledger, account: str) -> pl.DataFrame:
    frame = _as_dataset("paper_fills", ledger.fills(account), account, {"time_ms": "time"})
    return frame.sort("time", "trade_id")


def equity_frame(ledger: Ledger, account: str) -> pl.DataFrame:
    return _as_dataset("paper_equity", ledger.equity(account), account, {"time_ms": "time"}).sort(
        "time"
    )


def round_trips_frame(ledger: Ledger, account: str, interval_ms: int) -> pl.DataFrame:
    trips = recorder.realised(ledger, account, interval_ms)
    times = {"entry_ms": "entry_time", "exit_ms": "exit_time"}
    return _as_dataset("paper_round_trips", trips, account, times).sort("entry_time", "symbol")


def _skipped_counts(skipped: list[pl.DataFrame]) -> dict[str, int]:
    if not skipped:
        return {}
    counts = pl.concat(skipped).group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def digest(*frames: pl.DataFrame) -> str:
    h = hashlib.sha256()
    for frame in frames:
        h.update(frame.write_csv().encode())
    return h.hexdigest()[:16]


def write_outputs(
    ctx: RunContext,
    ledger: Ledger,
    inputs: SessionInputs,
    venue: str,
    *,
    refs: list[DatasetRef],
    config_hash: str,
    summary: dict[str, Any],
) -> DatasetRef:
    account = inputs.account
    orders, fills, equity = (
        orders_frame(ledger, account),
        fills_frame(ledger, account),
        equity_frame(ledger, account),
    )
    state = ledger.trading_state(account)
    write = {
        "stage": "paper",
        "inputs": refs,
        "config_hash": f"{config_hash}-{digest(orders, fills, equity)}",
    }
    session, start, end = summary["session"], summary["start"], summary["end"]
    extra = {
        "account": account,
        "venue": venue,
        "orders": orders.height,
        "fills": fills.height,
        "bars_traded": session.bars,
        "placed": len(session.placed),
        "unknown": len(session.unknown),
        "rejected": len(session.rejected),
        "denied": [f"{s}: {why}" for s, why in session.denied][:50],
        # Orders the planner did not send because the exchange would refuse them, by reason.
        "skipped": _skipped_counts(session.skipped),
        "halted": session.halted,
        "trading_state": state.mode.value,
        "trading_reason": state.reason,
        "reconcile_start": start.lines(),
        "reconcile_end": end.lines(),
        "invariants": summary["invariants"],
    }
    trips = round_trips_frame(ledger, account, inputs.interval_ms)
    outputs = {
        "paper_fills": ctx.catalog.write("paper_fills", fills, **write),
        "paper_equity": ctx.catalog.write("paper_equity", equity, **write),
        # Realised trades with the score at entry: what the accuracy tracker can judge.
        "paper_round_trips": ctx.catalog.write("paper_round_trips", trips, **write),
    }
    if trips.height:
        extra["round_trips"] = trips.height
        extra["direction_right"] = float(trips["direction_right"].mean())
    div = None
    if venue == "paper" and fills.height and equity.height:
        div = _divergence(ctx, ledger, inputs)
        known = (
            ctx.catalog.latest("paper_divergence")
            if ctx.catalog.exists("paper_divergence")
            else None
        )
        outputs["paper_divergence"] = ctx.catalog.write(
            "paper_divergence",
            div.to_frame(),
            **write,
            artifacts=lambda _ref, folder: divergence_html.write(div, folder / DIVERGENCE_HTML),
        )
        extra["divergence"] = {k: float(v) for k, v in div.buckets.items()}
        extra["divergence_gap"] = float(div.totals["gap"])
    extra["outputs"] = {name: ref.version for name, ref in outputs.items()}
    ref = ctx.catalog.write("paper_orders", orders, **write, extra=extra)
    if div is not None and outputs["paper_divergence"] != known:  # a new version: a new run
        _log(ctx, div, outputs["paper_divergence"], account)
    return ref


def _divergence(ctx: RunContext, ledger: Ledger, inputs: SessionInputs) -> divergence.Divergence:
    """The session's window through the backtest: from the account's first marked bar (its first
    decision) to the newest, the same targets, the same initial equity."""
    config, account = ctx.config, inputs.account
    marks = ledger.equity(account)
    first_decision_ms = int(marks["time_ms"][0]) - inputs.interval_ms
    start = pl.lit(first_decision_ms).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    bars = inputs.bars.filter(pl.col("open_time") >= start)
    targets = inputs.targets.filter(pl.col("open_time") >= start)
    twin = divergence.backtest_twin(
        bars, targets, config.backtest, inputs.rules, "spot", float(marks["equity"][0]),
        bars_per_year(config.universe.interval),
    )  # fmt: skip
    return divergence.decompose(
        ledger.fills(account), ledger.orders_frame(account), marks, twin, bars, assets=inputs.assets
    )


def _log(ctx: RunContext, div: divergence.Divergence, ref: DatasetRef, account: str) -> None:
    from quantlab.execution.divergence_tracked import log_to_mlflow

    log_to_mlflow(
        div,
        ctx.config.tracking,
        experiment="paper-divergence",
        run_name=f"divergence {account} {ref}",
        tags={"quantlab.dataset": str(ref), "quantlab.account": account},
    )
