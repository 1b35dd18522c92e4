"""Data-quality checks on a klines frame, run through Great Expectations.

A pure core: a polars frame in the klines schema goes in, a `CheckReport`
comes out; no file I/O and no clock (staleness is judged against an `as_of`
the caller passes). Rules GX has no built-in for (OHLC consistency, the
interval grid, per-series order, calendar gaps, return outliers, staleness)
are computed as columns in polars first (`_kline_columns`) and then checked by a
GX expectation, so every check is evaluated and reported by GX the same way.

A derived rule is only evaluated on rows whose inputs passed the basic checks
(not null, in range, aligned). One defect then fails one check: a µs value in
`open_time` fails `open_time_in_range`, not also the order and close_time rules.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

import polars as pl

from quantlab.config import ValidateConfig
from quantlab.errors import ConfigError, SchemaError
from quantlab.quality._absent import AMOUNTS, skip_absent
from quantlab.quality._gaps import confirmed_spans, gap_check
from quantlab.quality._gx import (
    HELPER,
    SCREEN,
    Check,
    Runner,
    Screened,
    between_check,
    check_dtypes,
    columns_check,
    configure_severity,
    expectation,
    not_null_check,
    run_screened,
    screen_rows,
    true_check,
    unique_key_check,
    year_bounds_ms,
)
from quantlab.quality._kline_columns import PRICES, prepare_columns
from quantlab.quality.checks import CheckReport, CheckResult, SeverityChange
from quantlab.quality.outages import Outage
from quantlab.schema import KLINES_KEY, KLINES_SCHEMA, absent_columns
from quantlab.vocab import INTERVAL_MS

__all__ = ["CheckReport", "CheckResult", "check_klines"]

_TIMES = ("open_time", "close_time")
_SHOWN_AS_TIME = (*_TIMES, f"{HELPER}prev_open_time", f"{HELPER}expected_last_open_time")


def check_klines(
    frames: pl.DataFrame | Iterable[pl.DataFrame],
    interval: str,
    cfg: ValidateConfig | None = None,
    *,
    outages: Sequence[Outage] = (),
    confirmed_gaps: pl.DataFrame | None = None,
    as_of: datetime | None = None,
    row_order: bool = True,
    screen: bool = True,
    runner: Runner | None = None,
    absent: Collection[str] | None = None,
    dataset: str = "klines",
) -> CheckReport:
    """Run every klines check on a frame (one or many series of `interval`) and report the result.

    `frames` may also be several frames, each holding whole series (a series split across
    frames would show gaps and duplicates at the seams) with the same columns: they are
    prepared one at a time, so only one frame's rows and helper columns are in memory at
    once, and validated by GX once, as if stacked. Row numbers in examples count through
    the frames in order.

    Missing candles inside one of `outages` or one of `confirmed_gaps` (`klines_gaps` rows:
    gaps the exchange confirmed empty; other intervals' are ignored) are reported as
    `known_gaps` (info), others as `calendar_gaps` (an error). `cfg.severity` sets any
    check's severity (off: not run); the report lists what it changed. With `as_of`
    (tz-aware), a series whose last candle is more than `cfg.max_stale_bars` bars older
    than the last one closed at `as_of` is stale (warning).
    `row_order=False` says the rows' order means nothing (a catalog version: Delta keeps
    none), so `open_time_increasing` is not checked. `screen=False` hands every row to GX
    (slow; the tests use it to prove the screen exact). `runner` validates (default: in
    memory; the gate passes its Checkpoint's, see `quality._project`).

    `absent` names the columns the data's source does not have (stored null on every row):
    the checks that read them are not run and the report lists them in `skipped`. None
    looks at the first frame: a `SOURCE_OPTIONAL` column null on all its rows is absent
    (`quantlab.schema.absent_columns`), and every later frame must lack the same ones.
    `dataset` names the suite (and the report), e.g. "mark_klines".

    Raises ConfigError for an unknown interval and SchemaError if a column has the
    wrong type (call `quantlab.schema.conform_klines` first). Missing or extra
    columns are reported by the `columns_match` check instead.
    """
    cfg = cfg or ValidateConfig()
    if interval not in INTERVAL_MS:
        raise ConfigError(
            f"unknown kline interval {interval!r}; use one of {', '.join(INTERVAL_MS)}"
        )
    if as_of is not None and as_of.tzinfo is None:
        raise ConfigError(f"as_of {as_of} has no time zone; pass an aware UTC datetime")
    step = INTERVAL_MS[interval]
    as_of_ms = None if as_of is None else int(as_of.timestamp() * 1000)
    spans = confirmed_spans(confirmed_gaps, interval, step)
    checks: list[Check] = []
    changes: tuple[SeverityChange, ...] = ()
    columns: list[str] | None = None
    parts: list[Screened] = []
    lacks: tuple[str, ...] | None = None if absent is None else tuple(absent)
    skipped: dict[str, str] = {}

    def add(df: pl.DataFrame) -> None:
        nonlocal checks, changes, columns, lacks, skipped
        check_dtypes(
            df,
            KLINES_SCHEMA,
            "klines",
            "cast the frame with quantlab.schema.conform_klines before validating it",
        )
        if columns is not None and df.columns != columns:
            raise SchemaError(
                f"the klines frames validated together differ in columns ({df.columns} after "
                f"{columns}); conform each with quantlab.schema.conform_klines"
            )
        columns = df.columns
        if all(c in df.columns for c in KLINES_SCHEMA):
            if absent is None and df.height:
                mine = absent_columns(df)
                if lacks is None:
                    lacks = mine
                elif mine != lacks:
                    raise SchemaError(
                        f"the klines frames validated together differ in the columns their "
                        f"source lacks ({list(mine)} after {list(lacks)}); validate each source's "
                        "series on their own, or pass `absent`"
                    )
            data = prepare_columns(df, step, cfg, outages, as_of_ms, row_order, spans)
            if not checks:
                built = _build_checks(interval, step, cfg, data.columns, outages, spans, as_of_ms)
                built, skipped = skip_absent(built, lacks or ())
                if not row_order:
                    built = [c for c in built if c.name != "open_time_increasing"]
                checks, changes = configure_severity(built, cfg.severity)
        else:
            # Without all columns the row rules cannot be computed: report the schema alone.
            data = df
            if not checks:
                checks, changes = configure_severity(
                    [columns_check(list(KLINES_SCHEMA))], cfg.severity
                )
        first_id = sum(p.height for p in parts)
        parts.append(screen_rows(data, checks, screen=screen, first_id=first_id))

    for df in [frames] if isinstance(frames, pl.DataFrame) else frames:
        add(df)
    if not parts:
        add(pl.DataFrame(schema=KLINES_SCHEMA))
    report = run_screened(
        dataset,
        parts,
        checks,
        times=_SHOWN_AS_TIME,
        screen=screen,
        runner=runner,
        changes=changes,
    )
    return replace(report, skipped=skipped) if skipped else report


def _build_checks(
    interval: str,
    step: int,
    cfg: ValidateConfig,
    columns: list[str],
    outages: Sequence[Outage],
    spans: pl.DataFrame,
    as_of_ms: int | None,
) -> list[Check]:
    lo, hi = year_bounds_ms(cfg)
    d = HELPER
    at = ("symbol", "open_time")

    checks = [
        columns_check([*KLINES_SCHEMA, *[c for c in columns if c.startswith(d)]]),
        *[not_null_check(c) for c in KLINES_SCHEMA],
        unique_key_check(
            KLINES_KEY,
            "one candle per market, symbol, interval and open_time",
            show=KLINES_KEY,
            duplicated=pl.col(f"{SCREEN}duplicate"),
        ),
        Check(
            "interval_matches",
            "error",
            expectation(
                "interval_matches",
                "ExpectColumnValuesToBeInSet",
                column="interval",
                value_set=[interval],
            ),
            suspect=pl.col("interval") != interval,
            show=("interval",),
            text=f"every row is labelled {interval}",
        ),
        *[between_check(f"price_positive.{c}", "error", c, cfg.min_price) for c in PRICES],
        *[between_check(f"non_negative.{c}", "error", c, 0) for c in AMOUNTS],
        *[between_check(f"{c}_in_range", "error", c, lo, hi) for c in _TIMES],
        true_check(
            "open_time_aligned", "error", "aligned", text=f"open_time is on the {interval} grid"
        ),
        true_check(
            "open_time_increasing",
            "error",
            "increasing",
            (f"{d}prev_open_time",),
            "open_time never goes back within a series, in row order",
        ),
        true_check(
            "close_time_within_bar",
            "error",
            "close_within_bar",
            ("close_time",),
            "open_time < close_time < open_time + interval",
        ),
        true_check(
            "ohlc_consistent",
            "error",
            "ohlc",
            PRICES,
            "high >= open, close, low and low <= open, close",
        ),
        true_check(
            "taker_volume_within_total",
            "error",
            "taker",
            ("volume", "taker_buy_base_volume", "quote_volume", "taker_buy_quote_volume"),
            "taker buy volumes do not exceed the totals",
        ),
        true_check(
            "close_time_exact",
            "warning",
            "close_exact",
            ("close_time",),
            "close_time = open_time + interval - 1 ms (else the candle was cut short)",
        ),
        Check(
            "zero_volume",
            "warning",
            expectation(
                "zero_volume", "ExpectColumnValuesToNotBeInSet", column="volume", value_set=[0.0]
            ),
            suspect=pl.col("volume") == 0,
            show=("volume", "trades"),
            text="the candle traded",
        ),
        true_check(
            "return_outlier",
            "warning",
            "return_ok",
            ("close", f"{d}log_return", f"{d}return_z"),
            f"one-bar log return within {cfg.max_return_sigmas:g} robust deviations (MAD)",
        ),
        gap_check(
            "calendar_gaps", "error", "unexplained_gap_bars", step, outages, spans, known=False
        ),
        gap_check("known_gaps", "info", "known_gap_bars", step, outages, spans, known=True),
    ]
    if as_of_ms is not None:
        checks.append(
            true_check(
                "stale_series",
                "warning",
                "fresh",
                (f"{d}expected_last_open_time", f"{d}bars_behind"),
                f"the last candle is at most {cfg.max_stale_bars} bar(s) older than the last "
                "one closed at the reference time",
            )
        )
    return [
        Check(
            c.name,
            c.severity,
            c.expectation,
            c.suspect,
            (*at, *[s for s in c.show if s not in at]) if c.suspect is not None else c.show,
            c.describe,
            c.text,
        )
        for c in checks
    ]
