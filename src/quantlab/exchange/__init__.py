"""The edge to Binance: a REST client, bulk files from data.binance.vision, and a local replay
exchange that speaks the same API."""

from quantlab.exchange._bans import ban_file
from quantlab.exchange._klines_csv import read_zip_member
from quantlab.exchange.binance import BinanceClient
from quantlab.exchange.exchange_info import parse_exchange_info
from quantlab.exchange.replay import ReplayServer, run_replay_server
from quantlab.exchange.vision import VisionFile, VisionSource

__all__ = [
    "BinanceClient",
    "ReplayServer",
    "VisionFile",
    "VisionSource",
    "ban_file",
    "parse_exchange_info",
    "read_zip_member",
    "run_replay_server",
]
