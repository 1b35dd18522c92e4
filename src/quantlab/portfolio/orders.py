"""The execution vocabulary every venue, the ledger and reconciliation share.

An `OrderIntent` (what the planner wants, with its durable idempotency key) becomes an order at
a venue under a client id derived from that key. A venue answers a submit with exactly one of
`Ack` (placed: the venue's report), `Rejected` (definitively not placed, with the venue's code
and message) or `Unknown` (a timeout, a 5xx, -1006 or -1007: it may exist; query, never resend
under a new id). `OrderReport` is what a venue says about one order; `VenueTrade` one execution
(a fill), keyed by the venue's trade id so booking it twice is impossible.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from quantlab.portfolio.types import Side

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
# Binance's quote assets, longest first: a symbol's name is base + quote (FDUSD before USD...).
_QUOTES = tuple(
    sorted(
        ("USDT", "FDUSD", "USDC", "TUSD", "BUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "XRP",
         "TRX", "DOGE", "DOT", "EUR", "GBP", "TRY", "BRL", "ARS", "AUD", "JPY", "RUB", "UAH",
         "ZAR", "PLN", "RON", "IDRT", "BIDR", "NGN", "AEUR"),
        key=lambda q: (-len(q), q),
    )
)  # fmt: skip


def split_symbol(symbol: str, known: dict[str, tuple[str, str]] | None = None) -> tuple[str, str]:
    """(base, quote) of a spot symbol: from `known` (the exchange_info dataset's) first, else
    by its quote suffix; ValueError when neither tells."""
    if known and symbol in known:
        return known[symbol]
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(
        f"cannot tell the base and quote of {symbol!r}; pass assets={{symbol: (base, quote)}} "
        "from the exchange_info dataset"
    )


class OrderStatus(StrEnum):
    """Binance's order statuses, plus the ledger's own PENDING_SUBMIT and UNKNOWN."""

    PENDING_SUBMIT = "PENDING_SUBMIT"  # in the ledger, not yet known to be sent
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"  # may carry fills (IOC / MARKET remainder)
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"  # sent, outcome unknown after every lookup: trading halts for the symbol

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
        OrderStatus.REJECTED,
    }
)


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


def idempotency_key(account: str, source: str, symbol: str, decision_ms: int, attempt: int) -> str:
    """The durable key of one intended order: account, the targets version it came from
    (`source`, e.g. "targets@v7"), symbol, the decision bar and the attempt (a new attempt
    only after the previous one is settled as not placed)."""
    return f"{account}|{source}|{symbol}|{decision_ms}|{attempt}"


def client_order_id(key: str) -> str:
    """The client id sent to the venue for `key`: deterministic, 32 legal characters.

    Binance keeps a client id unique only among open orders, so the ledger's unique
    idempotency key, not the venue, is what stops a second placement.
    """
    return "ql" + hashlib.sha256(key.encode()).hexdigest()[:30]


@dataclass(frozen=True)
class OrderIntent:
    """An order the planner wants placed; `price` for LIMIT only; `qty` > 0, base units."""

    account: str
    key: str  # idempotency_key(...)
    symbol: str
    side: Side
    type: OrderType
    qty: float
    price: float | None  # limit price; None for MARKET
    tif: TimeInForce | None  # LIMIT only
    decision_ms: int  # open_time of the bar whose close decided it
    target_weight: float
    source: str  # the targets version, "targets@v7"
    reference_price: float  # the decision close: what the planner sized with
    note: str = ""  # an adjustment the planner made ("qty floored to stepSize 0.00001")

    @property
    def client_id(self) -> str:
        return client_order_id(self.key)


@dataclass(frozen=True)
class VenueTrade:
    """One execution as the venue reports it (Binance myTrades / FULL fills)."""

    symbol: str
    trade_id: str
    venue_order_id: str
    client_id: str
    side: Side
    qty: float
    price: float
    fee: float
    fee_asset: str
    time_ms: int
    maker: bool = False


@dataclass(frozen=True)
class OrderReport:
    """The venue's view of one order (Binance GET /api/v3/order)."""

    symbol: str
    client_id: str
    venue_order_id: str
    status: OrderStatus
    side: Side
    type: OrderType
    qty: float
    executed_qty: float
    cum_quote: float
    price: float | None
    time_ms: int
    update_ms: int
    trades: tuple[VenueTrade, ...] = ()  # the order's fills where the venue sent them along


@dataclass(frozen=True)
class Ack:
    report: OrderReport


@dataclass(frozen=True)
class Rejected:
    code: int | None
    message: str


@dataclass(frozen=True)
class Unknown:
    reason: str  # "timeout", "HTTP 503", "-1007 ...": why the outcome is not known


SubmitResult = Ack | Rejected | Unknown


@dataclass(frozen=True)
class Balance:
    asset: str
    free: float
    locked: float

    @property
    def total(self) -> float:
        return self.free + self.locked


@dataclass(frozen=True)
class VenueSnapshot:
    """What reconciliation reads from a venue: open orders, recent orders and trades, balances.

    `complete` is False when a read failed: a missing report then proves nothing.
    """

    open_orders: tuple[OrderReport, ...]
    recent_orders: tuple[OrderReport, ...]
    trades: tuple[VenueTrade, ...]
    balances: dict[str, Balance]
    complete: bool = True
    errors: tuple[str, ...] = field(default_factory=tuple)


class Broker(Protocol):
    """One interface for the paper venue and the Binance adapter."""

    name: str  # "paper" | "binance"

    def submit(self, intent: OrderIntent) -> SubmitResult:
        """Send once under `intent.client_id`; never retried with another id."""
        ...

    def query(self, symbol: str, client_id: str) -> OrderReport | None:
        """The order by client id, with its trades; None when the venue says it does not exist
        (which right after a submit proves nothing)."""
        ...

    def cancel(self, symbol: str, client_id: str) -> OrderReport | None:
        """Cancel an open order; the order's report after the attempt (None: not found)."""
        ...

    def snapshot(self, symbols: list[str], since_ms: int) -> VenueSnapshot:
        """Open orders, orders and trades since `since_ms`, balances: for reconciliation."""
        ...

    def balances(self) -> dict[str, Balance]:
        """What the account holds now, per asset (free and locked)."""
        ...

    def advance(self, now_ms: int) -> None:
        """Let the venue's clock reach `now_ms` (the paper venue matches resting orders against
        the bars up to it); a live venue's clock runs by itself, so it does nothing."""
        ...


class TradingMode(StrEnum):
    """The account's breaker state (nautilus' TradingState): REDUCING sends only orders that
    shrink exposure or are scaled down; HALTED sends nothing new (cancels still pass)."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True)
class TradingState:
    """The persisted breaker state of one account (one row in the ledger)."""

    mode: TradingMode = TradingMode.ACTIVE
    reason: str = ""
    since_ms: int = 0
    peak_equity: float = 0.0  # highest marked equity since the start or the last reset
    day_ms: int = 0  # 00:00 UTC of the day day_start_equity belongs to
    day_start_equity: float = 0.0
    manual: bool = False  # set by a person (`quantlab paper halt|resume`): breakers leave it alone
