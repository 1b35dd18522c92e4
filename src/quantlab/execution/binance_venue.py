"""Binance spot (testnet or demo) as a `Broker`: the signed client plus the unknown-outcome rule.

A submit whose outcome is unknown (timeout, 5xx, -1006, -1007) is resolved only by looking
the order up by its client id, a few times with backoff, because Binance may answer "Order
does not exist." for seconds after accepting one. Found: it is an `Ack`. Never found: still
`Unknown`, and the ledger keeps it UNKNOWN for reconciliation. It is never resent: not under
a new id (a second order), and not under the same id either, since a MARKET order that
already filled frees its id and the resend would be accepted as a second order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import httpx

from quantlab.config.paper import BinanceVenueConfig
from quantlab.errors import ConfigError, ExchangeError, SchemaError
from quantlab.exchange.trading import SpotTradingClient
from quantlab.portfolio.orders import (
    Ack,
    Balance,
    OrderIntent,
    OrderReport,
    SubmitResult,
    Unknown,
    VenueSnapshot,
    VenueTrade,
)
from quantlab.secrets import get_secret

log = logging.getLogger(__name__)


class BinanceVenue:
    """Binance spot through `SpotTradingClient`; implements `quantlab.portfolio.orders.Broker`."""

    name = "binance"

    def __init__(
        self,
        client: SpotTradingClient,
        query_retries: int = 5,
        query_backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if query_retries < 1:
            raise ConfigError(f"query_retries {query_retries} must be >= 1")
        self.client = client
        self.query_retries = query_retries
        self.query_backoff_s = query_backoff_s
        self._sleep = sleep

    @classmethod
    def from_config(
        cls,
        cfg: BinanceVenueConfig,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> BinanceVenue:
        """The venue `paper.binance` describes, its keys read by `quantlab.secrets.get_secret`."""
        key = get_secret(f"{cfg.credentials}_api_key")
        secret = get_secret(f"{cfg.credentials}_api_secret")
        if not key or not secret:
            cred = cfg.credentials.upper()
            missing = [n for n, v in (("API_KEY", key), ("API_SECRET", secret)) if not v]
            raise ConfigError(
                f"the Binance {cfg.key_type} credentials '{cfg.credentials}' lack "
                f"{' and '.join(missing)}: set QUANTLAB_{cred}_API_KEY and "
                f"QUANTLAB_{cred}_API_SECRET (for ed25519 the secret is the private key PEM), "
                f"or AIRFLOW_CONN_{cred} with the key as login and the secret as password. "
                f"Keys for {cfg.base_url} come from that network (testnet.binance.vision for "
                "the testnet)."
            )
        client = SpotTradingClient(
            cfg.base_url,
            key,
            secret,
            key_type=cfg.key_type,
            recv_window_ms=cfg.recv_window_ms,
            timeout_s=cfg.timeout_s,
            transport=transport,
            clock=clock,
            sleep=sleep,
            allow_mainnet=cfg.allow_mainnet,
        )
        return cls(client, cfg.query_retries, cfg.query_backoff_s, sleep)

    def submit(self, intent: OrderIntent) -> SubmitResult:
        """Send once; an unknown outcome is looked up `query_retries` times, never resent."""
        result = self.client.new_order(intent)
        if not isinstance(result, Unknown):
            return result
        failures: list[str] = []
        for attempt in range(self.query_retries):
            self._sleep(self.query_backoff_s * 2**attempt)
            try:
                report = self.query(intent.symbol, intent.client_id)
            except (ExchangeError, SchemaError) as exc:
                failures.append(f"lookup {attempt + 1}: {exc}")
                continue
            if report is not None:
                log.info("order %s found after an unknown outcome (%s)", intent.client_id, result)
                return Ack(report)
        detail = f"; lookups that failed: {' | '.join(failures)}" if failures else ""
        return Unknown(
            f"{result.reason}; not found after {self.query_retries} lookups by client id{detail}"
        )

    def query(self, symbol: str, client_id: str) -> OrderReport | None:
        """The order with its fills (myTrades by order id when it has traded)."""
        return self._with_trades(self.client.get_order(symbol, client_id))

    def cancel(self, symbol: str, client_id: str) -> OrderReport | None:
        return self._with_trades(self.client.cancel_order(symbol, client_id))

    def snapshot(self, symbols: list[str], since_ms: int) -> VenueSnapshot:
        """Open orders, orders and trades since `since_ms` per symbol, and balances.

        A read that fails is listed in `errors` and makes the snapshot incomplete; the reads
        that worked are still returned. Trades carry their order's client id; an order that
        traded since `since_ms` but was created before it is fetched by id and included.
        """
        open_orders: list[OrderReport] = []
        orders: dict[tuple[str, str], OrderReport] = {}
        trades: list[VenueTrade] = []
        errors: list[str] = []

        def read(what: str, call: Callable[[], object]) -> object | None:
            try:
                return call()
            except (ExchangeError, SchemaError) as exc:
                errors.append(f"{what}: {exc}")
                return None

        for symbol in symbols:
            listed = read(f"openOrders {symbol}", lambda s=symbol: self.client.open_orders(s))
            open_orders.extend(listed or [])
            history = read(
                f"allOrders {symbol}", lambda s=symbol: self.client.all_orders(s, since_ms)
            )
            for report in [*(history or []), *(listed or [])]:
                orders[(symbol, report.venue_order_id)] = report
            found = read(f"myTrades {symbol}", lambda s=symbol: self.client.my_trades(s, since_ms))
            for trade in found or []:
                key = (symbol, trade.venue_order_id)
                if key not in orders:
                    what = f"order {symbol} #{trade.venue_order_id} of trade {trade.trade_id}"
                    failed = len(errors)
                    report = read(
                        what,
                        lambda t=trade: self.client.get_order(t.symbol, order_id=t.venue_order_id),
                    )
                    if report is None:  # kept without a client id; the snapshot says so
                        if len(errors) == failed:
                            errors.append(f"{what}: Binance does not find the order")
                        trades.append(trade)
                        continue
                    orders[key] = report
                trades.append(replace(trade, client_id=orders[key].client_id))
        balances = read("account", self.client.account)
        return VenueSnapshot(
            open_orders=tuple(open_orders),
            recent_orders=tuple(orders.values()),
            trades=tuple(trades),
            balances=balances if isinstance(balances, dict) else {},
            complete=not errors,
            errors=tuple(errors),
        )

    def balances(self) -> dict[str, Balance]:
        """The account's balances (GET /api/v3/account)."""
        return self.client.account()

    @property
    def now_ms(self) -> int:
        """The exchange's clock as the client estimates it (synced with /api/v3/time)."""
        return self.client.now_ms()

    def advance(self, now_ms: int) -> None:
        """Binance's clock runs by itself: nothing to do."""

    def close(self) -> None:
        self.client.close()

    def _with_trades(self, report: OrderReport | None) -> OrderReport | None:
        if report is None or report.executed_qty <= 0:
            return report
        trades = self.client.my_trades(report.symbol, order_id=report.venue_order_id)
        return replace(report, trades=tuple(replace(t, client_id=report.client_id) for t in trades))
