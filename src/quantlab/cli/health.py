"""`quantlab health [--json]`: the catalog, klines freshness, the gate's last verdict, MLflow,
a champion for every configured model and the ledger, each OK/WARN/FAIL with a reason.
Exit 1 on any FAIL."""

from __future__ import annotations

import argparse
import json

from quantlab.context import RunContext


def _cmd_health(ctx: RunContext, args: argparse.Namespace) -> int:
    from quantlab.health import FAIL, run_checks
    from quantlab.health.run import report

    results = run_checks(ctx)
    if args.json:
        print(json.dumps(report(results), default=str))
    else:
        width = max(len(r.name) for r in results)
        for r in results:
            print(f"{r.status:<4}  {r.name:<{width}}  {r.reason}")
        print(f"\n{report(results)['status']}")
    return 1 if any(r.status == FAIL for r in results) else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="check every component: OK/WARN/FAIL, exit 1 on FAIL")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=_cmd_health)
