"""exchangeInfo for a replay folder with no recorded one, built from the symbols in its tree.

A bulk tree downloaded from data.binance.vision holds klines only, yet a REST backfill asks
exchangeInfo first (for its weight limit). Every symbol with a kline folder is listed as
TRADING. Its entry is the recorded mainnet answer's (`_reference/`: spot 2023-09-08, USD-M
2024-10-02), status aside, where that lists the symbol; otherwise a minimal entry with
Binance's documented default filters. The rate limits are Binance's published ones.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

_REFERENCE = {
    "spot": "spot_exchangeInfo_2023-09-08_MAINNET.json.gz",
    "futures_um": "usdm_futures_exchangeInfo_2024-10-02_MAINNET.json.gz",
}

# (rateLimitType, interval, intervalNum, limit). Spot: what GET /api/v3/exchangeInfo answers
# today (the 2023-09-08 recording still had ORDERS 50/10 s, 160,000/day, RAW_REQUESTS 61,000).
# USD-M: as Binance publishes them, and as the 2024-10-02 mainnet recording answers.
_RATE_LIMITS = {
    "spot": (
        ("REQUEST_WEIGHT", "MINUTE", 1, 6000),
        ("ORDERS", "SECOND", 10, 100),
        ("ORDERS", "DAY", 1, 200_000),
        ("RAW_REQUESTS", "MINUTE", 5, 300_000),
    ),
    "futures_um": (
        ("REQUEST_WEIGHT", "MINUTE", 1, 2400),
        ("ORDERS", "MINUTE", 1, 1200),
        ("ORDERS", "SECOND", 10, 300),
    ),
}

# Filters of a symbol the recordings do not list. Sources: the spot API's filters.md and the
# USD-M "common definition" page, which document the same formats for these four.
_PRICE_FILTER = {
    "filterType": "PRICE_FILTER",
    # filters.md: "disabled on minPrice == 0" / "maxPrice == 0". The docs' example values
    # (0.000001 to 100,000) would refuse real prices (BTC above 100,000, coins below 1e-6).
    "minPrice": "0.00000000",
    "maxPrice": "0.00000000",
    # One unit of the 8 decimals every spot price carries (quotePrecision 8); the finest tick
    # in the 2023-09-08 recording, and the most common one there (418 of 2,292 symbols).
    # Not 0 ("disabled"): the exchange_info gate requires tick_size > 0.
    "tickSize": "0.00000001",
}
# filters.md and the USD-M page, LOT_SIZE and MARKET_LOT_SIZE "/exchangeInfo format" examples.
_LOT = {"minQty": "0.00100000", "maxQty": "100000.00000000", "stepSize": "0.00100000"}
_DEFAULT_FILTERS: dict[str, tuple[dict[str, Any], ...]] = {
    "spot": (
        _PRICE_FILTER,
        {"filterType": "LOT_SIZE", **_LOT},
        {"filterType": "MARKET_LOT_SIZE", **_LOT},
        {
            # filters.md's NOTIONAL example (minNotional 10, also the recording's most common
            # value), with the recording's maxNotional: the example's 10,000 would refuse
            # ordinary orders, and every symbol recorded carries 9,000,000 or more.
            "filterType": "NOTIONAL",
            "minNotional": "10.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ),
    "futures_um": (
        _PRICE_FILTER,
        {"filterType": "LOT_SIZE", **_LOT},
        {"filterType": "MARKET_LOT_SIZE", **_LOT},
        # The USD-M page's MIN_NOTIONAL example; 338 of 347 recorded contracts carry "5".
        {"filterType": "MIN_NOTIONAL", "notional": "5.0"},
    ),
}
# Order types of the default entries: spot's enums.md list less the unavailable STOP_LOSS /
# TAKE_PROFIT; USD-M's common-definition list.
_ORDER_TYPES = {
    "spot": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
    "futures_um": [
        "LIMIT",
        "MARKET",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
    ],
}


@functools.cache
def reference(market: str) -> dict[str, Any]:
    """The recorded mainnet exchangeInfo answer of `market`, parsed once per process."""
    blob = resources.files(__package__).joinpath("_reference", _REFERENCE[market]).read_bytes()
    return json.loads(gzip.decompress(blob))


@functools.cache
def _recorded(market: str) -> dict[str, dict[str, Any]]:
    return {entry["symbol"]: entry for entry in reference(market)["symbols"]}


@functools.cache
def _quote_assets() -> tuple[str, ...]:
    """Every quote asset either recording uses, longest first (so FDUSD wins over USD...)."""
    quotes = {
        entry["quoteAsset"] for market in _REFERENCE for entry in reference(market)["symbols"]
    }
    quotes |= {asset["asset"] for asset in reference("futures_um").get("assets", [])}
    return tuple(sorted(quotes, key=lambda q: (-len(q), q)))


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base asset, quote asset) of a symbol the recordings lack, by its known quote suffix.

    A dated USD-M contract (`BTCUSDT_250328`) is split on its pair. With no known quote
    asset at the end, both are "" (unknown), rather than a guess.
    """
    pair = symbol.split("_", 1)[0]
    for quote in _quote_assets():
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    return "", ""


def weight_limit(market: str, weight_limit_per_min: int) -> int:
    """The request weight per minute the replay enforces on `market`'s API: Binance's own
    (spot 6000, USD-M 2400, each API counted apart), or the server's lower limit."""
    (published,) = [
        limit
        for kind, interval, num, limit in _RATE_LIMITS[market]
        if (kind, interval, num) == ("REQUEST_WEIGHT", "MINUTE", 1)
    ]
    return min(published, weight_limit_per_min)


def rate_limits(market: str, weight_limit_per_min: int) -> list[dict[str, Any]]:
    """Binance's published limits; the request weight lowered to what the replay enforces,
    so a client that obeys the answer never meets the replay's own 429."""
    out = []
    for kind, interval, num, limit in _RATE_LIMITS[market]:
        if (kind, interval, num) == ("REQUEST_WEIGHT", "MINUTE", 1):
            limit = weight_limit(market, weight_limit_per_min)
        out.append(
            {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}
        )
    return out


def symbol_entry(market: str, symbol: str) -> dict[str, Any]:
    """The exchangeInfo entry of `symbol`: the recorded one, TRADING, or a default one."""
    recorded = _recorded(market).get(symbol)
    if recorded is not None:
        return {**copy.deepcopy(recorded), "status": "TRADING"}
    base, quote = split_symbol(symbol)
    entry: dict[str, Any] = {"symbol": symbol, "status": "TRADING", "baseAsset": base}
    if market == "spot":
        entry |= {
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": list(_ORDER_TYPES[market]),
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "permissions": ["SPOT"],
        }
    else:
        pair = symbol.split("_", 1)[0]
        entry |= {"pair": pair, "quoteAsset": quote, "marginAsset": quote}
        if pair == symbol:  # a dated contract's kind (quarter, month) is not in its name
            entry["contractType"] = "PERPETUAL"
        entry["orderTypes"] = list(_ORDER_TYPES[market])
    entry["filters"] = copy.deepcopy(list(_DEFAULT_FILTERS[market]))
    return entry


def build_exchange_info(
    market: str, symbols: Iterable[str], *, now_ms: int | None, weight_limit_per_min: int
) -> dict[str, Any]:
    """The exchangeInfo body of `market` listing `symbols` (sorted), at `now_ms`."""
    listed = [symbol_entry(market, s) for s in sorted(set(symbols))]
    body: dict[str, Any] = {"timezone": "UTC", "serverTime": now_ms}
    if market == "futures_um":
        body["futuresType"] = "U_MARGINED"
    body["rateLimits"] = rate_limits(market, weight_limit_per_min)
    body["exchangeFilters"] = []
    if market == "futures_um":
        margins = {entry.get("marginAsset") for entry in listed}
        assets = reference(market).get("assets", [])
        body["assets"] = [copy.deepcopy(a) for a in assets if a.get("asset") in margins]
    body["symbols"] = listed
    return body
