"""(base, quote) of a symbol: what a fill's cash flows are booked in.

The caller's mapping (the planner's `assets`, from exchangeInfo) is the truth; without it the
quote is the longest known quote asset the symbol ends with (Binance spot's quotes as of the
recorded 2023-09-08 exchangeInfo, the common ones). A symbol that ends in none of them is an
error, not a guess.
"""

from __future__ import annotations

from collections.abc import Mapping

from quantlab.execution.ledger.errors import LedgerError
from quantlab.portfolio.orders import split_symbol


def symbol_assets(
    symbol: str, known: Mapping[str, tuple[str, str]] | None = None
) -> tuple[str, str]:
    """(base, quote) of `symbol`: from `known` first, else by its quote suffix."""
    try:
        return split_symbol(symbol, dict(known) if known else None)
    except ValueError:
        raise LedgerError(
            f"cannot tell the base and quote assets of {symbol!r}; pass assets={{symbol: (base, "
            "quote)}} to Ledger.connect or ledger.register_assets"
        ) from None
