"""Missing candles, and which of them are explained.

A candle missing from a series' calendar is known (info) when it lies inside a known
exchange outage (`configs/known_outages.yaml`) or inside a gap the exchange confirmed
empty when asked again (ingest's `klines_gaps`); any other missing candle fails the gate
(`calendar_gaps`, an error unless the config lowers it). A bar inside both counts once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from quantlab.errors import SchemaError
from quantlab.quality._gx import HELPER, MAX_EXAMPLES, Check, expectation, iso_ms
from quantlab.quality.checks import Severity
from quantlab.quality.outages import Outage

CONFIRMED = "confirmed empty by the exchange (klines_gaps)"
SPAN_SCHEMA = {"market": pl.String(), "symbol": pl.String(), "lo": pl.Int64(), "hi": pl.Int64()}
_GAP_COLUMNS = ("market", "symbol", "gap_start", "gap_end")
_HOLE = "_hole"


def confirmed_spans(gaps: pl.DataFrame | None, interval: str, step: int) -> pl.DataFrame:
    """The gaps of `interval` the exchange confirmed empty, as bar-aligned spans `[lo, hi)`
    of epoch ms per market and symbol.

    `gaps` holds `klines_gaps` rows: market, symbol, interval (optional: all of `interval`
    without it), and the open times of the first and last missing candle (inclusive).
    """
    if gaps is None or gaps.is_empty():
        return pl.DataFrame(schema=SPAN_SCHEMA)
    lacking = [c for c in _GAP_COLUMNS if c not in gaps.columns]
    if lacking:
        raise SchemaError(
            f"confirmed gaps lack column(s) {lacking}; pass klines_gaps rows "
            f"({', '.join(_GAP_COLUMNS)}, interval)"
        )
    if "interval" in gaps.columns:
        gaps = gaps.filter(pl.col("interval") == interval)

    def ms(column: str) -> pl.Expr:
        col = pl.col(column)
        return col.dt.epoch("ms") if gaps.schema[column].is_temporal() else col.cast(pl.Int64)

    return gaps.select(
        pl.col("market").cast(pl.String),
        pl.col("symbol").cast(pl.String),
        (ms("gap_start") // step * step).alias("lo"),
        ((ms("gap_end") // step + 1) * step).alias("hi"),
    ).drop_nulls()


def known_bars(
    holes: pl.DataFrame, step: int, outages: Sequence[Outage], spans: pl.DataFrame
) -> pl.Series:
    """Per hole, how many of its missing bars an outage or a confirmed span explains.

    `holes` has one row per hole: `lo`, `hi` (its missing bars open in `[lo, hi)`, aligned),
    `outage_<i>` (does outage i apply to its series) and, with `spans`, market and symbol.
    The explaining windows are merged first, so a bar inside two counts once.
    """
    h = holes.with_row_index(_HOLE)
    lo, hi = pl.col("lo"), pl.col("hi")
    pieces = []
    for i, o in enumerate(outages):
        # A bar [t, t + step) overlaps the outage [start, end) when floor(start) <= t < end.
        o_lo, o_hi = o.start_ms // step * step, -(-o.end_ms // step) * step
        pieces.append(
            h.filter(pl.col(f"outage_{i}")).select(
                _HOLE,
                pl.max_horizontal(lo, pl.lit(o_lo)).alias("lo"),
                pl.min_horizontal(hi, pl.lit(o_hi)).alias("hi"),
            )
        )
    if not spans.is_empty():
        joined = h.select(_HOLE, "market", "symbol", "lo", "hi").join(
            spans.rename({"lo": "s_lo", "hi": "s_hi"}), on=["market", "symbol"]
        )
        pieces.append(
            joined.select(
                _HOLE,
                pl.max_horizontal(lo, pl.col("s_lo")).alias("lo"),
                pl.min_horizontal(hi, pl.col("s_hi")).alias("hi"),
            )
        )
    counts = np.zeros(h.height, dtype=np.int64)
    if pieces:
        # Sorted by start within each hole, a window adds only what reaches past the ones before.
        windows = pl.concat(pieces).filter(hi > lo).sort(_HOLE, "lo")
        reach = hi.cum_max().shift(1).over(_HOLE)
        covered = (
            windows.with_columns(reach.alias("reach"))
            .group_by(_HOLE)
            .agg(((hi - pl.max_horizontal(lo, pl.col("reach"))).clip(lower_bound=0)).sum())
        )
        counts[covered[_HOLE].to_numpy()] = covered["hi"].to_numpy() // step
    return pl.Series(counts)


def gap_check(
    name: str,
    severity: Severity,
    helper: str,
    step: int,
    outages: Sequence[Outage],
    spans: pl.DataFrame,
    *,
    known: bool,
) -> Check:
    """Missing bars summed over the frame, unexplained or (`known`) explained; the examples
    are the first holes in time order, each named by its first and last missing candle."""
    col = f"{HELPER}{helper}"
    confirmed: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for market, symbol, lo, hi in spans.iter_rows():
        confirmed.setdefault((market, symbol), []).append((lo, hi))

    def explained_by(market: str, symbol: str, first: int, end: int) -> str | None:
        for o in outages:
            if o.covers(market, symbol) and o.start_ms // step * step < end and first < o.end_ms:
                return o.label
        if any(lo < end and first < hi for lo, hi in confirmed.get((market, symbol), ())):
            return CONFIRMED
        return None

    def describe(data: pl.DataFrame, res: dict) -> tuple[int, list[dict]]:
        count = int(res.get("observed_value") or 0)
        if not count:
            return 0, []
        gaps = data.filter(pl.col(col) > 0).sort(["market", "symbol", "open_time"])
        examples = []
        for g in gaps.head(MAX_EXAMPLES).iter_rows(named=True):
            end = g["open_time"] // step * step
            first = end - g[f"{HELPER}gap_bars"] * step
            ex = {
                "symbol": g["symbol"],
                "first_missing": iso_ms(first),
                "last_missing": iso_ms(end - step),
                "missing": int(g[col]),
                "next_open_time": iso_ms(g["open_time"]),
            }
            if known:
                ex["outage"] = explained_by(g["market"], g["symbol"], first, end)
            examples.append(ex)
        return count, examples

    return Check(
        name,
        severity,
        expectation(name, "ExpectColumnSumToBeBetween", column=col, max_value=0),
        suspect=pl.col(col) > 0,
        describe=describe,
        text=(
            "bars missing from the calendar inside a known exchange outage or a gap the "
            "exchange confirmed empty"
            if known
            else "no bar is missing from the calendar outside a known outage or a gap the "
            "exchange confirmed empty"
        ),
    )
