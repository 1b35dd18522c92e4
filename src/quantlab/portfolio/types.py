"""The portfolio's shared types, one spelling for the backtest, risk and paper trading."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """The side of an order or a fill, spelled as Binance spells it."""

    BUY = "BUY"
    SELL = "SELL"
