"""The shared `quantlab data` command: each `data_*` module adds its subcommand under it."""

from __future__ import annotations

import argparse

_ATTR = "_quantlab_data_subparsers"


def data_subparsers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The subparsers of `quantlab data`, creating the `data` parser on first use."""
    found = getattr(sub, _ATTR, None)
    if found is None:
        data = sub.add_parser("data", help="check and load market data")
        found = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
        setattr(sub, _ATTR, found)
    return found
