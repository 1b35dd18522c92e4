"""A local stand-in for Binance: its market-data REST API over a data.binance.vision folder.

`root` holds `data/{spot|futures/um}/{monthly|daily}/klines/{SYMBOL}/{interval}/*.zip`, exactly
as data.binance.vision lays it out, and optionally recorded responses under `api/` (funding
rates, exchangeInfo; see `_vision_store`). The server answers `/api/v3/{klines,time,ping,
exchangeInfo}` (spot) and `/fapi/v1/{klines,time,ping,exchangeInfo,fundingRate}` (USD-M
futures) with Binance's semantics (`_replay_routes`; exchangeInfo without a recording is built
from the tree, `_replay_info`), serves the bulk files under `/data/...` and nothing outside
that folder, counts request weight per minute and can inject faults. Whatever a request holds,
it gets an answer (in Binance's JSON error shape), never a dropped connection. Stdlib and
polars only, so it runs anywhere quantlab does: in tests, in offline DAG runs, or as
`quantlab replay-server`.

With `accounts`, it also trades: Binance's SIGNED spot endpoints (/api/v3/order, order/test,
openOrders, allOrders, myTrades, account) over per-key balances, filled against the recorded
klines at the replay clock (`_replay_trading`, `_replay_orders`, `_replay_auth`). Request
timestamps are judged against the wall clock (`clock`), prices against the replay clock
(`now_ms`; move it with `set_now`). `server.order_faults` scripts order faults (`_replay_faults`).
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from quantlab.exchange import _replay_routes as routes
from quantlab.exchange import _replay_trading as trading
from quantlab.exchange._replay_accounts import Account, load_accounts, parse_account
from quantlab.exchange._replay_faults import OrderFaults, parse_fault
from quantlab.exchange._replay_http import _FAULTS, _Handler, _Server, served_file
from quantlab.exchange._replay_info import build_exchange_info, weight_limit
from quantlab.exchange._vision_layout import MARKET_DIRS
from quantlab.exchange._vision_store import KlineStore, RecordStore, _Lazy

__all__ = [
    "Account",
    "OrderFaults",
    "ReplayServer",
    "load_accounts",
    "main",
    "parse_account",
    "parse_fault",
    "run_replay_server",
    "served_file",
]


class ReplayServer:
    """Binance's market-data REST API over stored bulk files, on a background thread.

    `now_ms` fixes the exchange clock; None puts it just after the last stored candle (so
    every stored candle is closed), "wall" uses `clock`. Candles that open after "now" are
    not served. `clock` also drives the per-minute weight window, so a test can share one
    fake clock between this server and the client's `sleep`.
    """

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fail_rate: float = 0.0,
        latency_s: float = 0.0,
        weight_limit_per_min: int = 6000,
        seed: int = 0,
        now_ms: int | Literal["wall"] | None = None,
        clock: Callable[[], float] = time.time,
        accounts: Sequence[Account] = (),
        order_faults: OrderFaults | None = None,
    ):
        self.root = Path(root)
        self.host, self.port = host, port
        self.fail_rate, self.latency_s = fail_rate, latency_s
        self.weight_limit_per_min = weight_limit_per_min
        self.store = KlineStore(self.root)
        self.records = RecordStore(self.root)
        self._built_info = _Lazy()
        self._clock = clock
        self._now_ms = self.store.last_period_end_ms() if now_ms is None else now_ms
        self._rng = random.Random(seed)
        self.faults_injected: Counter[str] = Counter()
        self.responses: Counter[int] = Counter()  # HTTP status -> how many were sent
        self._lock = threading.Lock()
        self._weights: dict[str, tuple[int, int]] = {}  # API prefix -> (minute, weight used)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # wakes replies held by an accept_then_timeout fault
        self.order_faults = order_faults or OrderFaults()
        self.trading = trading.Trading(self, list(accounts), seed)  # no accounts: -2015 to all

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ReplayServer is not running; call start() or use it in a with")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ReplayServer:
        self._stopping.clear()
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.replay = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def now_ms(self) -> int:
        if isinstance(self._now_ms, int):
            return self._now_ms
        return int(self._clock() * 1000)

    def set_now(self, now_ms: int) -> None:
        """Move the replay clock; resting orders fill over the candles that closed by then."""
        self._now_ms = now_ms
        with self.trading.book.lock:
            self.trading.book.advance(now_ms)

    def exchange_info(self, market: str) -> dict[str, Any]:
        """`market`'s exchangeInfo: the recorded one under `api/` where there is one, else one
        built from the symbols in the tree (TRADING, Binance's rate limits and filters)."""
        recorded = self.records.exchange_info(market)
        if recorded is not None:
            return recorded
        built = self._built_info.get(
            market,
            lambda: build_exchange_info(
                market,
                self.store.symbols(MARKET_DIRS[market]),
                now_ms=None,
                weight_limit_per_min=self.weight_limit_per_min,
            ),
        )
        return {**built, "serverTime": self.now_ms()}

    def used_weight(self, api: str = "/api/v3") -> int:
        """Weight used this minute on `api` (spot and futures count apart, as on Binance)."""
        with self._lock:
            minute, used = self._weights.get(api, (-1, 0))
            return used if minute == int(self._clock() // 60) else 0

    def weight_limit(self, api: str = "/api/v3") -> int:
        """The weight per minute `api` allows: Binance's for its market (spot 6000, USD-M
        2400), or `weight_limit_per_min` where that is lower."""
        return weight_limit(routes.MARKETS[api][0], self.weight_limit_per_min)

    def _charge(self, weight: int, api: str = "/api/v3") -> int | None:
        """Count `weight` in this minute; over the limit, return Retry-After seconds instead."""
        with self._lock:
            now = self._clock()
            minute, used = self._weights.get(api, (-1, 0))
            if int(now // 60) != minute:
                minute, used = int(now // 60), 0
            if used + weight > self.weight_limit(api):
                self._weights[api] = (minute, used)
                return max(1, math.ceil((minute + 1) * 60 - now))
            self._weights[api] = (minute, used + weight)
            return None

    def _draw_fault(self) -> str | None:
        with self._lock:
            if self.fail_rate and self._rng.random() < self.fail_rate:
                fault = self._rng.choice(_FAULTS)
                self.faults_injected[fault] += 1
                return fault
            return None

    def _count(self, status: int) -> None:
        with self._lock:
            self.responses[status] += 1


def run_replay_server(
    root: Path | str,
    host: str = "127.0.0.1",
    port: int = 8765,
    fail_rate: float = 0.0,
    latency_s: float = 0.0,
    **options: Any,
) -> None:
    """Serve `root` in the foreground until Ctrl-C (`options`: ReplayServer's keywords)."""
    server = ReplayServer(root, host, port, fail_rate=fail_rate, latency_s=latency_s, **options)
    server.start()
    print(f"replaying {server.root} on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`quantlab replay-server --root DIR [--host H] [--port N] [--fail-rate X] [--latency S]`."""
    parser = argparse.ArgumentParser(
        prog="quantlab replay-server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--root", type=Path, default=Path("data/sample"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each reply")
    args = parser.parse_args(argv)
    if not (args.root / "data").is_dir():
        parser.error(f"{args.root} has no data/ folder in the data.binance.vision layout")
    run_replay_server(args.root, args.host, args.port, args.fail_rate, args.latency)
    return 0
