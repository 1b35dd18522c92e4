"""The `quantlab` command: datasets, the research summary, and the replay exchange."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from quantlab.catalog import DatasetRef
from quantlab.context import RunContext
from quantlab.errors import QuantlabError


def _cmd_datasets_list(ctx: RunContext, args: argparse.Namespace) -> int:
    names = ctx.catalog.names()
    if not names:
        print(f"no datasets yet in {ctx.catalog.root}; run `make run` to build them")
        return 0
    print(f"{'dataset':<16} {'version':>7} {'rows':>9}  {'created (UTC)':<25} stage")
    for name in names:
        info = ctx.catalog.versions(name)[-1]
        lin = info.lineage
        rows = lin.row_count if lin else "?"
        created = lin.created_at if lin else "?"
        stage = lin.stage if lin else info.operation
        print(f"{name:<16} {info.ref.version:>7} {rows:>9}  {created:<25} {stage}")
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


def _cmd_summary(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.report import print_summary

    return print_summary(ctx)


def _cmd_run(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.pipeline import run_research
    from quantlab.report import print_summary

    run_research(ctx)
    return print_summary(ctx)


def _cmd_replay_server(ctx: RunContext | None, args: argparse.Namespace) -> int:
    from quantlab.exchange.replay import run_replay_server

    run_replay_server(args.root, args.host, args.port, args.fail_rate, args.latency)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantlab", description=__doc__)
    parser.add_argument(
        "--config", help="config YAML (default: $QUANTLAB_CONFIG or configs/default.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

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

    sub.add_parser("summary", help="what the latest research run produced").set_defaults(
        func=_cmd_summary
    )
    sub.add_parser("run", help="run the research pipeline without Airflow").set_defaults(
        func=_cmd_run
    )

    replay = sub.add_parser("replay-server", help="serve a data.binance.vision folder as Binance")
    replay.add_argument("--root", required=True)
    replay.add_argument("--host", default="127.0.0.1")
    replay.add_argument("--port", type=int, default=8765)
    replay.add_argument("--fail-rate", type=float, default=0.0)
    replay.add_argument("--latency", type=float, default=0.0)
    replay.set_defaults(func=_cmd_replay_server, needs_ctx=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ctx = RunContext.load(args.config) if getattr(args, "needs_ctx", True) else None
        return args.func(ctx, args)
    except QuantlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
