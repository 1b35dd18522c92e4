"""The `quantlab` command. Each module in this package adds its subcommands through `register`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from quantlab.context import RunContext
from quantlab.errors import QuantlabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantlab", description="quantlab research platform")
    parser.add_argument(
        "--config", help="config YAML (default: $QUANTLAB_CONFIG or configs/default.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a QuantlabError prints its message (what happened, what to do) and exits 2."""
    args = build_parser().parse_args(argv)
    try:
        ctx = RunContext.load(args.config) if getattr(args, "needs_ctx", True) else None
        return int(args.func(ctx, args) or 0)
    except QuantlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
