"""What the backtest stage reads, checked: gated bars, filters and funding, out-of-fold targets."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.errors import QualityError
from quantlab.portfolio.venue import VenueRules, venue_rules
from quantlab.quality.gate import require_passed
from quantlab.quality.read import load_bars, load_mark
from quantlab.vocab import KEY

BAR_COLUMNS = ("symbol", "open_time", "open", "high", "low", "close", "volume", "quote_volume")


@dataclass(frozen=True)
class BacktestInputs:
    """The engine's inputs and the catalog versions they came from (the lineage's inputs)."""

    bars: pl.DataFrame
    targets: pl.DataFrame
    rules: VenueRules
    funding: pl.DataFrame | None
    mark_klines: pl.DataFrame | None
    refs: list[DatasetRef]


def load_inputs(
    ctx: RunContext,
    targets: DatasetRef,
    predictions: DatasetRef,
    klines: DatasetRef,
    checks: DatasetRef,
    exchange_info: DatasetRef,
    exchange_info_checks: DatasetRef,
    funding: DatasetRef | None = None,
    funding_checks: DatasetRef | None = None,
) -> BacktestInputs:
    """The out-of-fold targets and every gated input the engine needs over their span.

    Only bars the walk-forward scored out of fold are judged (the newest bars, scored by the
    model fitted on every label, are for trading, not for the record); bars before the first
    of them would count as a flat stretch and water down every statistic.
    """
    universe = ctx.config.universe
    require_passed(ctx.catalog, exchange_info, exchange_info_checks)
    oof = (
        ctx.catalog.scan(predictions)
        .filter((pl.col("model") == ctx.config.train.primary_model) & (pl.col("fold") >= 0))
        .select(*KEY)
    )
    sized = (
        ctx.catalog.scan(targets)
        .join(oof, on=list(KEY), how="semi")
        .select(*KEY, "target_weight")
        .sort(*KEY)
        .collect()
    )
    if sized.height == 0:
        raise QualityError(
            f"{targets} holds no target on an out-of-fold bar of {predictions}; rerun the risk "
            "stage on these predictions (`quantlab run risk`)"
        )
    sized_for = set(sized["symbol"].unique().to_list())
    if not sized_for <= set(universe.symbols):
        raise QualityError(
            f"{targets} was sized for {sorted(sized_for)}, outside this config's universe "
            f"{list(universe.symbols)} (another config's run is the latest in this catalog); "
            "run `quantlab run risk` with this config first, or pass this config's versions"
        )
    start = sized["open_time"].min()
    bars = (
        load_bars(ctx, klines, checks)
        .filter(pl.col("open_time") >= start)
        .select(BAR_COLUMNS)
        .sort(*KEY)
        .collect()
    )
    rules = venue_rules(ctx.catalog.read(exchange_info), list(universe.symbols), universe.market)
    refs = [targets, predictions, klines, checks, exchange_info, exchange_info_checks]
    rates = None
    if funding is not None:
        if funding_checks is None:
            raise QualityError(
                f"{funding} was passed without its validation; run the validate stage on it"
            )
        require_passed(ctx.catalog, funding, funding_checks)
        rates = (
            ctx.catalog.scan(funding)
            .filter(pl.col("symbol").is_in(list(universe.symbols)))
            .collect()
        )
        refs += [funding, funding_checks]
    # Funding is paid on the mark price; without a gated mark series the engine falls back
    # to the bar's price and the report flags every payment priced that way.
    mark = None
    if universe.market == "futures_um" and (marks := load_mark(ctx)) is not None:
        mark = marks.filter(pl.col("open_time") >= start).select(*KEY, "open").collect()
        refs += [ctx.catalog.latest("mark_klines"), ctx.catalog.latest("mark_klines_checks")]
    return BacktestInputs(bars, sized, rules, rates, mark, refs)
