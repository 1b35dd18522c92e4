"""`quantlab backtest sweep|lookahead`: a recorded study of signal and sizing settings on the
out-of-fold period, and the sizing rule's lookahead analysis."""

from __future__ import annotations

import argparse

from quantlab.context import RunContext


def _cmd_sweep(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.backtest.study import describe, run_study

    ref, result = run_study(ctx, args.grid)
    print(describe(ref, result))
    return 0


def _cmd_lookahead(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.backtest.lookahead_check import check_sizing

    report = check_sizing(ctx, cuts=args.cuts)
    print(report.describe())
    if report.leaks:
        print(report.changed.head(10))
    return 1 if report.leaks else 0


def register(sub: argparse._SubParsersAction) -> None:
    bt = sub.add_parser("backtest", help="studies of the backtest: sweeps of signal and sizing")
    bt_sub = bt.add_subparsers(dest="backtest_command", required=True)
    sweep = bt_sub.add_parser(
        "sweep",
        help="every combination of a grid of signal.* / risk.* settings on the latest targets' "
        "predictions, in one engine call; recorded as backtest_sweep, and every configuration "
        "counts in N of the deflated Sharpe of later backtests of those predictions",
    )
    sweep.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="SECTION.KEY=V1,V2",
        help="e.g. --grid signal.threshold=0.1,0.2,0.3 --grid risk.target_vol=0.1,0.2 (repeat)",
    )
    sweep.set_defaults(func=_cmd_sweep)
    look = bt_sub.add_parser(
        "lookahead",
        help="rerun this config's sizing on the latest predictions with the history cut at "
        "several points; exit 1 if a target changes when the bars after it are removed",
    )
    look.add_argument("--cuts", type=int, default=8, help="cut points over the second half")
    look.set_defaults(func=_cmd_lookahead)
