"""The portfolio's shared types, one spelling for the backtest, risk and paper trading.

target (a weight to hold) -> `Order` (what a venue is asked) -> `Fill` (what it did) or
`Rejection` (why it refused) -> position (signed qty from fills). The backtest engine works on
arrays with the same meaning; these records are what the paper bridge passes around.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class Side(StrEnum):
    """The side of an order or a fill, spelled as Binance spells it."""

    BUY = "BUY"
    SELL = "SELL"


class RejectReason(IntEnum):
    """Why an order was refused before it reached the venue; the int is the engine's code."""

    STEP_SIZE = 1  # the qty floors to 0 at the symbol's stepSize
    MIN_QTY = 2
    MIN_NOTIONAL = 3
    MAX_QTY = 4
    MARGIN = 5  # spot: not enough cash; USD-M: over max_leverage
    SHORT_NOT_ALLOWED = 6

    @property
    def label(self) -> str:
        """The reason as the rejections table spells it: step_size, min_notional, ..."""
        return self.name.lower()


@dataclass(frozen=True)
class Order:
    """A market order (`price` None) or a limit order; `qty` > 0 in base units."""

    symbol: str
    side: Side
    qty: float
    price: float | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class Fill:
    """What an order did: `price` executed (slipped, on the tick grid), `fee` in `fee_asset`."""

    symbol: str
    time: datetime
    side: Side
    qty: float
    price: float
    fee: float
    fee_asset: str
    slippage_cost: float


@dataclass(frozen=True)
class Rejection:
    """An order refused before the venue, with its reason and a sentence saying why."""

    symbol: str
    time: datetime
    side: Side
    qty: float
    price: float
    reason: RejectReason
    detail: str
