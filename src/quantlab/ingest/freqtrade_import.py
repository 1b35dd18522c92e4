"""A freqtrade data folder into `klines`, `mark_klines` and `funding_rates`, through the gate.

    quantlab data ingest --source freqtrade --root DIR --market um --symbols A,B --interval 1h

Each dataset is written by the catalog's merge (klines with ingest's own writer,
`_store.write_klines`), only with the rows it does not hold yet or holds with other values,
so importing the same folder again writes nothing. Each version then goes through the
data-quality gate (`quantlab.quality.run`) as the REST and bulk sources' do; the checks that
need columns freqtrade does not keep are skipped and listed in the `<name>_checks` record.

In the research pipeline, `exchange.source: freqtrade` reads `exchange.freqtrade_root`:
the `ingest` stage imports the universe's klines and mark-price candles (`run_freqtrade`),
and the `funding` stage its funding rates (`quantlab.ingest.funding.run_universe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from quantlab.catalog import Catalog, DatasetRef
from quantlab.config import slice_hash
from quantlab.context import RunContext
from quantlab.errors import ConfigError, DatasetNotFound
from quantlab.ingest import _store as store
from quantlab.ingest.freqtrade import read_series
from quantlab.ingest.stage import to_ms
from quantlab.schema import (
    FUNDING_RATES_KEY,
    KLINES_KEY,
    KLINES_PARTITIONS,
    SOURCE_OPTIONAL,
)

MARKET = "futures_um"
DATASETS = ("klines", "mark_klines", "funding_rates")
_KEYS = {"klines": KLINES_KEY, "mark_klines": KLINES_KEY, "funding_rates": FUNDING_RATES_KEY}
_TIME = {"klines": "open_time", "mark_klines": "open_time", "funding_rates": "funding_time"}


@dataclass(frozen=True)
class FreqtradeImport:
    """What one import did: per dataset, the version it left (None: never written), the
    rows it added or changed, and the gate's `<name>_checks` version; the files read."""

    market: str
    interval: str
    symbols: tuple[str, ...]
    refs: dict[str, DatasetRef | None]
    rows_written: dict[str, int]
    checks: dict[str, DatasetRef] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    absent: tuple[str, ...] = SOURCE_OPTIONAL  # kline columns the source has not: kept null


def import_freqtrade(
    ctx: RunContext,
    root: Path,
    *,
    symbols: Sequence[str],
    interval: str,
    market: str = MARKET,
    start_ms: int | None = None,
    end_ms: int | None = None,
    funding_start_ms: int | None = None,
    datasets: Sequence[str] = DATASETS,
    gate: bool = True,
) -> FreqtradeImport:
    """Import `symbols`' `interval` files under `root` into `datasets`; with `gate`, validate
    each dataset's resulting version (QualityError if one fails, after it was written).

    Times are open (funding) times in `[start_ms, end_ms)`; None: all the files hold.
    `funding_start_ms` starts the funding window earlier (the funding features' warm-up).
    """
    if market != MARKET:
        raise ConfigError(
            f"the freqtrade source imports USD-M perpetuals (market futures_um, `--market um`), "
            f"not {market!r}; import spot candles with --source vision or rest"
        )
    if unknown := [d for d in datasets if d not in DATASETS]:
        raise ConfigError(f"the freqtrade source writes {list(DATASETS)}, not {unknown}")
    series = [
        read_series(
            root,
            s,
            interval,
            market=market,
            start_ms=start_ms,
            end_ms=end_ms,
            funding_start_ms=funding_start_ms,
        )
        for s in dict.fromkeys(symbols)
    ]
    config_hash = slice_hash(ctx.config, ("exchange",))
    refs: dict[str, DatasetRef | None] = {}
    written: dict[str, int] = {}
    for name in datasets:
        frame = pl.concat([getattr(s, name) for s in series])
        new = changed_rows(ctx.catalog, name, frame)
        extra = {
            "source": "freqtrade",
            "root": str(root),
            "market": market,
            "interval": interval,
            "symbols": list(dict.fromkeys(symbols)),
            "rows": new.height,
            "absent_columns": list(SOURCE_OPTIONAL) if name == "klines" else [],
        }
        refs[name] = _write(ctx.catalog, name, new, config_hash, extra)
        written[name] = new.height
        if refs[name] is None and ctx.catalog.exists(name):
            refs[name] = ctx.catalog.latest(name)
    checks = {}
    if gate:
        from quantlab import quality

        checks = {name: quality.run(ctx, ref) for name, ref in refs.items() if ref is not None}
    return FreqtradeImport(
        market,
        interval,
        tuple(dict.fromkeys(symbols)),
        refs,
        written,
        checks,
        tuple(str(p) for s in series for p in s.files),
    )


def changed_rows(catalog: Catalog, name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of `frame` the latest `name` lacks, or holds with other values (nulls equal)."""
    if frame.is_empty() or not catalog.exists(name):
        return frame
    t = _TIME[name]
    stored = (
        catalog.scan(catalog.latest(name))
        .filter(
            pl.col("market").is_in(frame["market"].unique().to_list()),
            pl.col("symbol").is_in(frame["symbol"].unique().to_list()),
            pl.col(t).is_between(frame[t].min(), frame[t].max()),
        )
        .select([pl.col(c).cast(dtype) for c, dtype in frame.schema.items()])
        .collect()
    )
    return frame.join(stored, on=frame.columns, how="anti", nulls_equal=True)


def _write(
    catalog: Catalog, name: str, frame: pl.DataFrame, config_hash: str, extra: dict
) -> DatasetRef | None:
    if frame.is_empty():
        return None
    frame = frame.sort(*_KEYS[name])
    if name == "klines":
        return store.write_klines(catalog, frame, config_hash=config_hash, extra=extra)
    args = {"stage": "ingest", "config_hash": config_hash, "extra": extra}
    with store.write_lock(catalog, name):
        if name == "mark_klines":
            return catalog.upsert(
                "mark_klines", frame, KLINES_KEY, partition_by=list(KLINES_PARTITIONS), **args
            )
        return catalog.upsert("funding_rates", frame, FUNDING_RATES_KEY, **args)


def _root(ctx: RunContext) -> Path:
    cfg = ctx.config.exchange
    if cfg.source != "freqtrade":
        raise ConfigError("exchange.source is not freqtrade; set it and exchange.freqtrade_root")
    return cfg.freqtrade_root


def run_freqtrade(ctx: RunContext) -> DatasetRef:
    """The `ingest` stage on `exchange.source: freqtrade`: the universe's klines and mark-price
    candles over `[universe.start, universe.end)`. The klines version is returned for the
    `validate` stage to gate; the mark klines, which no stage of the graph takes, are gated
    here (`mark_klines_checks`; QualityError if they fail). Read them with
    `quantlab.quality.load_mark`."""
    universe = ctx.config.universe
    done = import_freqtrade(
        ctx,
        _root(ctx),
        symbols=universe.symbols,
        interval=universe.interval,
        market=universe.market,
        start_ms=to_ms(universe.start),
        end_ms=to_ms(universe.end),
        datasets=("klines", "mark_klines"),
        gate=False,
    )
    ref = done.refs["klines"]
    if ref is None:
        raise DatasetNotFound(
            f"{_root(ctx)} holds no {universe.interval} candles of {list(universe.symbols)} "
            f"between {universe.start} and {universe.end}; check universe and "
            "exchange.freqtrade_root in the config"
        )
    if (mark := done.refs["mark_klines"]) is not None:
        from quantlab import quality

        quality.run(ctx, mark)
    return ref


def run_universe_funding(ctx: RunContext, start_ms: int) -> DatasetRef | None:
    """The universe's funding rates from `start_ms` to `universe.end` (the funding stage
    on the freqtrade source); mark_price from the mark candles where they are."""
    universe = ctx.config.universe
    done = import_freqtrade(
        ctx,
        _root(ctx),
        symbols=universe.symbols,
        interval=universe.interval,
        start_ms=to_ms(universe.start),
        end_ms=to_ms(universe.end),
        funding_start_ms=start_ms,
        datasets=("funding_rates",),
        gate=False,
    )
    return done.refs["funding_rates"]
