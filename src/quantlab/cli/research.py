"""`quantlab run` and `quantlab summary`: the research pipeline without Airflow, and its results."""

from __future__ import annotations

import argparse

from quantlab.context import RunContext


def _cmd_summary(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.cli._summary import print_summary

    return print_summary(ctx)


def _cmd_run(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.cli._summary import print_summary
    from quantlab.pipeline import run_research

    run_research(ctx)
    return print_summary(ctx)


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("summary", help="what the latest research run produced").set_defaults(
        func=_cmd_summary
    )
    sub.add_parser("run", help="run the research pipeline without Airflow").set_defaults(
        func=_cmd_run
    )
