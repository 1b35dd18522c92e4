"""The edge to Binance: a REST client, and a local replay exchange that speaks the same API."""

from quantlab.exchange.binance import BinanceClient
from quantlab.exchange.replay import ReplayServer, run_replay_server

__all__ = ["BinanceClient", "ReplayServer", "run_replay_server"]
