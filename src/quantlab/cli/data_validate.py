"""`quantlab data validate`: run the validation gate on a file you bring or on a catalog version.

    quantlab data validate --input BTCUSDT-1h-2023-03.csv --interval 1h [--symbol BTCUSDT]
    quantlab data validate klines [--version 3]

A file is a Binance 12-column kline CSV (with or without a header; ms or µs), a
data.binance.vision zip, or parquet in the klines schema. Exit status: 0 the data
passes (warnings are printed), 1 it fails validation (each failed check with its count
and example lines; a candle missing outside the known outages, and for a catalog version
outside the gaps the exchange confirmed empty, is one), 2 it cannot be read as klines at
all (the line and the reason). `validate.severity` in the config sets a check's severity;
the summary names every check it lowered or raised.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from quantlab.catalog import DatasetRef
from quantlab.cli._data import data_subparsers
from quantlab.context import RunContext
from quantlab.errors import ConfigError
from quantlab.vocab import INTERVAL_MS, MARKETS


def _as_of(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO time such as 2024-01-01 or 2024-01-01T12:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _cmd_validate(ctx: RunContext, args: argparse.Namespace) -> int:
    if (args.input is None) == (args.dataset is None):
        raise ConfigError(
            "give either --input FILE (a file you bring) or a DATASET name (e.g. klines)"
        )
    if args.input is not None:
        return _validate_file(ctx, args)
    return _validate_dataset(ctx, args)


def _validate_file(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.quality.docs import build_data_docs
    from quantlab.quality.files import read_klines_file
    from quantlab.quality.klines import check_klines
    from quantlab.quality.outages import load_outages

    if args.interval is None:
        raise ConfigError("--interval is required with --input (e.g. --interval 1h)")
    path = Path(args.input)
    read = read_klines_file(path, market=args.market, symbol=args.symbol, interval=args.interval)
    cfg = ctx.config.validate_
    report = check_klines(
        read.frame,
        args.interval,
        cfg,
        outages=load_outages(cfg.known_outages),
        as_of=args.as_of,
    )
    symbols = ", ".join(read.frame["symbol"].unique(maintain_order=True).drop_nulls().to_list())
    print(f"{path}: {read.frame.height:,} rows of {args.market} {symbols or '?'} {args.interval}")
    for note in read.notes:
        print(f"note: {note}")
    print(report.summary(read.row_label))
    if args.data_docs:
        paths = ctx.config.paths
        docs = build_data_docs(
            report,
            site_dir=paths.data / "data_docs",
            store_dir=paths.data,
            batch=path.name,
            run_name=f"file-{path.stem}",
        )
        print(f"Data Docs: {docs}")
    return 0 if report.passed else 1


def _validate_dataset(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab import quality

    ref = (
        DatasetRef(args.dataset, args.version)
        if args.version is not None
        else ctx.catalog.latest(args.dataset)
    )
    result = quality.check_version(ctx, ref, as_of=args.as_of, data_docs=not args.no_data_docs)
    print(f"{ref}: recorded as {result.checks}")
    print(result.report.summary())
    if result.data_docs:
        print(f"Data Docs: {result.data_docs}")
    return 0 if result.report.passed else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = data_subparsers(sub).add_parser(
        "validate",
        help="check a klines file you bring, or a catalog dataset version",
        description=__doc__.splitlines()[0],
        epilog="exit status: 0 passes, 1 fails validation, 2 cannot be read",
    )
    p.add_argument("dataset", nargs="?", help="catalog dataset: klines, funding_rates, ...")
    p.add_argument("--version", type=int, help="dataset version (default: the latest)")
    p.add_argument("--input", metavar="FILE", help="a kline CSV, bulk zip or parquet file")
    p.add_argument("--interval", choices=tuple(INTERVAL_MS), help="the file's kline interval")
    p.add_argument("--symbol", help="the file's symbol (default: from its name)")
    p.add_argument("--market", choices=MARKETS, default="spot")
    p.add_argument(
        "--as-of",
        type=_as_of,
        help="reference time (UTC) for the stale-series check; a file is not checked without it",
    )
    p.add_argument(
        "--data-docs", action="store_true", help="also add the file's result to the Data Docs"
    )
    p.add_argument(
        "--no-data-docs", action="store_true", help="do not rebuild Data Docs for a dataset"
    )
    p.set_defaults(func=_cmd_validate)
