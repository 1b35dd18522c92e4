"""The replay exchange's REST endpoints, with Binance's parameters, semantics and weights.

Spot `/api/v3/{klines,time,ping,exchangeInfo}` and USD-M futures
`/fapi/v1/{klines,time,ping,exchangeInfo,fundingRate}`. Each handler takes the parsed query
and returns (HTTP status, JSON body). exchangeInfo is the recorded answer where the root has
one, else one built from the symbols in its tree (`_replay_info`).
"""

from __future__ import annotations

import bisect
import json
import re
from typing import TYPE_CHECKING

from quantlab.exchange._weights import (
    EXCHANGE_INFO_WEIGHT,
    FUNDING_RATE_MAX_LIMIT,
    FUNDING_RATE_WEIGHT,
    FUTURES_KLINES_MAX_LIMIT,
    SPOT_KLINES_MAX_LIMIT,
    TIME_WEIGHT,
    klines_weight,
)
from quantlab.vocab import INTERVAL_MS

if TYPE_CHECKING:
    from quantlab.exchange.replay import ReplayServer

# API prefix -> (market, folder under root, max klines limit)
MARKETS = {
    "/api/v3": ("spot", "data/spot", SPOT_KLINES_MAX_LIMIT),
    "/fapi/v1": ("futures_um", "data/futures/um", FUTURES_KLINES_MAX_LIMIT),
}
_ENDPOINTS = {
    "/api/v3": frozenset({"klines", "time", "ping", "exchangeInfo"}),
    "/fapi/v1": frozenset({"klines", "time", "ping", "exchangeInfo", "fundingRate"}),
}
_INTERVALS = frozenset({*INTERVAL_MS, "1s", "3d", "1w", "1M"})
_KLINES_DEFAULT_LIMIT = 500
_FUNDING_DEFAULT_LIMIT = 100
_FUNDING_LATEST = 200  # neither startTime nor endTime: the most recent 200 records
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


def error(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()


def replay_error(msg: str) -> bytes:
    """What the replay itself refuses (no such path, no such record), in Binance's error shape;
    -1000 is the code Binance sends for failures it has no specific code for."""
    return error(-1000, msg)


def exists(prefix: str, endpoint: str) -> bool:
    return endpoint in _ENDPOINTS.get(prefix, ())


def weight(prefix: str, endpoint: str, query: dict[str, str]) -> int:
    """The request weight Binance charges, as counted in X-MBX-USED-WEIGHT-1M."""
    market = MARKETS[prefix][0]
    if endpoint == "klines":
        limit = query.get("limit", "")
        # Not str.isdigit: it takes "²", which int() refuses. A bad limit is refused later.
        given = re.fullmatch(r"[0-9]{1,20}", limit)
        return klines_weight(market, int(limit) if given else _KLINES_DEFAULT_LIMIT)
    if endpoint == "exchangeInfo":
        return EXCHANGE_INFO_WEIGHT[market]
    if endpoint == "fundingRate":
        return FUNDING_RATE_WEIGHT
    return TIME_WEIGHT


def answer(
    replay: ReplayServer, prefix: str, endpoint: str, query: dict[str, str]
) -> tuple[int, bytes]:
    if endpoint == "klines":
        return _klines(replay, prefix, query)
    if endpoint == "fundingRate":
        return _funding_rate(replay, query)
    if endpoint == "exchangeInfo":
        return _exchange_info(replay, prefix, query)
    if endpoint == "time":
        return 200, json.dumps({"serverTime": replay.now_ms()}).encode()
    return 200, b"{}"


def _bad_params(query: dict[str, str], mandatory: tuple[str, ...]) -> bytes | None:
    for name in mandatory:
        if not query.get(name):
            return error(
                -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            )
    for name in ("startTime", "endTime", "limit"):
        if name in query and not re.fullmatch(r"[0-9]{1,20}", query[name]):
            return error(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
            )
    if "symbol" in query and not re.fullmatch(_SYMBOL_RANGE, query["symbol"]):
        return error(
            -1100,
            f"Illegal characters found in parameter 'symbol'; legal range is '{_SYMBOL_RANGE}'.",
        )
    return None


def _window(
    times: list[int], query: dict[str, str], now_ms: int, limit: int, latest: int
) -> tuple[int, int]:
    """Binance's paging: from startTime the first `limit`, else the last (`latest`) up to endTime."""
    hi = bisect.bisect_right(times, now_ms)  # only what exists by the exchange's "now"
    if "endTime" in query:
        hi = min(hi, bisect.bisect_right(times, int(query["endTime"])))
    if "startTime" in query:
        lo = bisect.bisect_left(times, int(query["startTime"]))
        return lo, max(lo, min(hi, lo + limit))
    return max(hi - latest, 0), hi


def _limit(query: dict[str, str], default: int, top: int) -> int:
    return min(max(int(query.get("limit", default)), 1), top)


def _klines(replay: ReplayServer, prefix: str, query: dict[str, str]) -> tuple[int, bytes]:
    _, base, max_limit = MARKETS[prefix]
    if bad := _bad_params(query, ("symbol", "interval")):
        return 400, bad
    if not replay.store.has_symbol(base, query["symbol"]):
        return 400, error(-1121, "Invalid symbol.")
    if query["interval"] not in _INTERVALS:
        return 400, error(-1120, "Invalid interval.")
    opens, rows = replay.store.rows(base, query["symbol"], query["interval"])
    limit = _limit(query, _KLINES_DEFAULT_LIMIT, max_limit)
    lo, hi = _window(opens, query, replay.now_ms(), limit, limit)
    return 200, ("[" + ",".join(rows[lo:hi]) + "]").encode()


def _funding_rate(replay: ReplayServer, query: dict[str, str]) -> tuple[int, bytes]:
    if bad := _bad_params(query, ()):
        return 400, bad
    symbol = query.get("symbol") or None
    if symbol is not None and not replay.records.has_funding(symbol):
        if not _listed(replay, "futures_um", symbol):
            return 400, error(-1121, "Invalid symbol.")
        # Binance would answer with its funding; the replay can only say it has none.
        rel = f"api/fundingRate/{symbol}.json"
        msg = (
            f"replay: no funding rates recorded for {symbol} (a USD-M contract it lists): "
            f"save the GET /fapi/v1/fundingRate records of {symbol} at {rel} under its root"
        )
        return 404, replay_error(msg)
    times, rows = replay.records.funding(symbol)
    limit = _limit(query, _FUNDING_DEFAULT_LIMIT, FUNDING_RATE_MAX_LIMIT)
    no_times = "startTime" not in query and "endTime" not in query
    latest = _FUNDING_LATEST if no_times and "limit" not in query else limit
    lo, hi = _window(times, query, replay.now_ms(), limit, latest)
    return 200, ("[" + ",".join(rows[lo:hi]) + "]").encode()


def _exchange_info(replay: ReplayServer, prefix: str, query: dict[str, str]) -> tuple[int, bytes]:
    market = MARKETS[prefix][0]
    body = replay.exchange_info(market)
    if market != "spot":  # /fapi/v1/exchangeInfo takes no parameters
        return 200, json.dumps(body, separators=(",", ":")).encode()
    if "symbol" in query and "symbols" in query:
        return 400, error(-1128, "Combination of optional parameters invalid.")
    if bad := _bad_params(query, ()):
        return 400, bad
    wanted = [query["symbol"]] if "symbol" in query else None
    if "symbols" in query:
        if not re.fullmatch(_SYMBOLS_RANGE, query["symbols"]):
            msg = f"Illegal characters found in parameter 'symbols'; legal range is '{_SYMBOLS_RANGE}'."
            return 400, error(-1100, msg)
        wanted = json.loads(query["symbols"])
    if wanted:
        listed = {s.get("symbol"): s for s in body.get("symbols", [])}
        if any(s not in listed for s in wanted):
            return 400, error(-1121, "Invalid symbol.")
        body = {**body, "symbols": [listed[s] for s in dict.fromkeys(wanted)]}
    return 200, json.dumps(body, separators=(",", ":")).encode()


def _listed(replay: ReplayServer, market: str, symbol: str) -> bool:
    """Whether the replay knows `symbol` on `market`: klines in its tree, or listed in its
    exchangeInfo (recorded, else built from the tree)."""
    base = next(folder for _, (m, folder, _) in MARKETS.items() if m == market)
    if replay.store.has_symbol(base, symbol):
        return True
    return any(s.get("symbol") == symbol for s in replay.exchange_info(market)["symbols"])
