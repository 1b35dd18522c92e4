"""`quantlab datasets list|show|export`: what the catalog holds, its lineage, and a copy out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext


def _cmd_datasets_list(ctx: RunContext, args: argparse.Namespace) -> int:
    names = ctx.catalog.names()
    if not names:
        print(f"no datasets yet in {ctx.catalog.root}; run `make run` to build them")
        return 0
    print(f"{'dataset':<20} {'version':>7} {'rows':>9}  {'created (UTC)':<25} stage")
    for name in names:
        info = ctx.catalog.versions(name)[-1]
        lin = info.lineage
        rows = lin.row_count if lin else "?"
        created = lin.created_at if lin else "?"
        stage = lin.stage if lin else info.operation
        print(f"{name:<20} {info.ref.version:>7} {rows:>9}  {created:<25} {stage}")
    return 0


def _cmd_datasets_show(ctx: RunContext, args: argparse.Namespace) -> int:
    ref = (
        DatasetRef(args.name, args.version)
        if args.version is not None
        else ctx.catalog.latest(args.name)
    )
    if args.json:
        chain = [{"dataset": str(r), **lin.__dict__} for r, lin in ctx.catalog.walk_lineage(ref)]
        print(json.dumps(chain, indent=2, default=str))
        return 0
    versions = ctx.catalog.versions(args.name)
    print(f"{args.name}: {len(versions)} version(s), showing v{ref.version}")
    for depth, (r, lin) in enumerate(ctx.catalog.walk_lineage(ref)):
        pad = "  " * min(depth, 1)
        inputs = ", ".join(f"{n}@v{v}" for n, v in sorted(lin.inputs.items())) or "(source)"
        print(f"{pad}{r}  stage={lin.stage}  rows={lin.row_count}  created={lin.created_at}")
        print(f"{pad}    inputs: {inputs}")
        print(f"{pad}    config={lin.config_hash or '-'}  code={lin.code_version}")
        if depth == 0 and lin.extra:
            print(f"{pad}    extra: {json.dumps(lin.extra, default=str)[:600]}")
    return 0


def _cmd_datasets_export(ctx: RunContext, args: argparse.Namespace) -> int:
    ref, rows = ctx.catalog.export(args.name, args.out, args.version)
    print(f"wrote {rows:,} rows of {ref} to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("datasets", help="list and inspect catalog datasets")
    ds_sub = ds.add_subparsers(dest="datasets_command", required=True)
    ds_sub.add_parser("list", help="every dataset with its latest version").set_defaults(
        func=_cmd_datasets_list
    )
    show = ds_sub.add_parser("show", help="one version with its lineage")
    show.add_argument("name")
    show.add_argument("--version", type=int)
    show.add_argument("--json", action="store_true", help="machine-readable lineage chain")
    show.set_defaults(func=_cmd_datasets_show)
    export = ds_sub.add_parser("export", help="write one version to a Parquet file")
    export.add_argument("name")
    export.add_argument("--out", type=Path, required=True, help="FILE.parquet")
    export.add_argument("--version", type=int, help="default: the latest")
    export.set_defaults(func=_cmd_datasets_export)
