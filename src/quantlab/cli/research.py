"""`quantlab run [STAGE]` and `quantlab summary`: the research pipeline without Airflow, and its results."""

from __future__ import annotations

import argparse

from quantlab.context import RunContext


def _cmd_summary(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.cli._summary import print_summary

    return print_summary(ctx)


def _cmd_run(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.cli._summary import print_summary
    from quantlab.pipeline import STAGES, latest_inputs, run_research, run_stage

    if args.stage is None:
        run_research(ctx)
        return print_summary(ctx)
    node = STAGES[args.stage]
    inputs = latest_inputs(ctx, node)
    shown = ", ".join(str(ref) for ref in inputs if ref is not None) or "no input"
    out = run_stage(ctx, node, inputs)
    print(f"{node.name} on {shown}: {out if out is not None else 'nothing (off for this config)'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from quantlab.pipeline import STAGES

    sub.add_parser("summary", help="what the latest research run produced").set_defaults(
        func=_cmd_summary
    )
    run = sub.add_parser(
        "run",
        help="run the research pipeline without Airflow, or one stage on the latest inputs",
    )
    run.add_argument(
        "stage",
        nargs="?",
        choices=list(STAGES),
        help="run only this stage, on the latest version of each of its inputs",
    )
    run.set_defaults(func=_cmd_run)
