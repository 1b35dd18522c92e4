"""What a paper session reads from the catalog, checked: gated bars, filters, the targets and
scores of the champion's predictions."""

from __future__ import annotations

import polars as pl

from quantlab.catalog import DatasetRef, RiskRun, TrainingRun
from quantlab.context import RunContext
from quantlab.errors import DataError
from quantlab.execution.session import SessionInputs
from quantlab.portfolio.venue import venue_rules
from quantlab.quality.gate import require_passed
from quantlab.quality.read import load_bars
from quantlab.vocab import INTERVAL_MS, KEY

BAR_COLUMNS = ("symbol", "open_time", "open", "high", "low", "close", "volume", "quote_volume")


def champion_check(ctx: RunContext, targets: DatasetRef, predictions: DatasetRef) -> str:
    """ "" when the predictions behind the targets are the champion's, else why not to trade.

    The gate may keep the old champion; the targets of a challenger are then not traded (the
    champion's newest signals come with the next run that it wins, or a promotion by hand).
    """
    name = ctx.config.train.register_as
    if name is None or ctx.config.train.per_symbol:
        return ""
    from quantlab.tracking.registry import registry_for

    # paper_trading's targets name the champion they were sized for; research's come from the
    # training that wrote `predictions`.
    run_id = ctx.catalog.extra(targets, RiskRun).champion_run_id
    if run_id is None:
        run_id = ctx.catalog.extra(predictions, TrainingRun).mlflow_run_id
    champion = registry_for(ctx.config.tracking.uri).champion(name)
    if champion is None:
        return f"{name} has no champion yet (the promote stage names one); nothing is traded"
    if run_id is None or champion.meta("run_id") != run_id:
        return (
            f"{predictions} are not the champion's: {name} v{champion.version} is champion and the "
            f"gate kept it; paper trades only the champion's signals (promote by hand with "
            f"`quantlab model promote`, or let a retrain win the gate)"
        )
    return ""


def assets_of(
    exchange_info: pl.DataFrame, symbols: list[str], market: str
) -> dict[str, tuple[str, str]]:
    rows = exchange_info.filter(pl.col("market") == market, pl.col("symbol").is_in(symbols))
    if "snapshot_time" in rows.columns:  # the dataset keeps every snapshot: the newest counts
        rows = rows.sort("snapshot_time").group_by("symbol").last()
    out = {r["symbol"]: (r["base_asset"], r["quote_asset"]) for r in rows.iter_rows(named=True)}
    missing = sorted(set(symbols) - set(out))
    if missing:
        raise DataError(f"exchange_info has no base/quote assets for {missing}; run exchange_info")
    return out


def load_session_inputs(
    ctx: RunContext,
    targets: DatasetRef,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    exchange_info: DatasetRef,
    exchange_info_checks: DatasetRef,
) -> SessionInputs:
    """Bars from the first target on (the backtest's window, so sigma and volume match), the
    targets, the primary model's scores, the filters and assets of the universe."""
    config = ctx.config
    symbols = list(config.universe.symbols)
    require_passed(ctx.catalog, exchange_info, exchange_info_checks)
    tgt = ctx.catalog.read(targets).select(*KEY, "target_weight").sort(*KEY)
    if tgt.height == 0:
        raise DataError(f"{targets} is empty; run the risk stage first (`quantlab run risk`)")
    start = tgt["open_time"].min()
    bars = (
        load_bars(ctx, klines, checks)
        .filter(pl.col("open_time") >= start)
        .select(BAR_COLUMNS)
        .sort(*KEY)
        .collect()
    )
    preds = (
        ctx.catalog.scan(predictions)
        .filter(pl.col("model") == config.train.primary_model)
        .collect()
    )
    scores = _scores(preds)
    info = ctx.catalog.read(exchange_info)
    market = config.universe.market
    return SessionInputs(
        account=config.paper.account,
        bars=bars,
        targets=tgt,
        scores=scores,
        rules=venue_rules(info, symbols, market),
        assets=assets_of(info, symbols, market),
        source=str(targets),
        interval_ms=INTERVAL_MS[config.universe.interval],
    )


def _scores(preds: pl.DataFrame) -> pl.DataFrame:
    """symbol, open_time, score, class: the score the signal rule read, and the predicted class."""
    cls = pl.lit(None, pl.Int8)
    if "prob_up" in preds.columns:
        cls = (pl.col("prob_up") >= 0.5).cast(pl.Int8)
    # The newest bars are scored by the model fitted on every label: one row per bar kept.
    return (
        preds.sort("open_time")
        .unique(list(KEY), keep="last")
        .select(*KEY, pl.col("score").cast(pl.Float64), cls.alias("class"))
    )
