"""The paper_trading DAG against the replay exchange in testnet mode, under `airflow dags test`.

A champion is trained on real Feb-Apr 2023 bars; the replay exchange serves the same recorded
klines with a signed spot account (its clock at the catalog's end, so its prices are the bars'),
and the DAG trades the champion's newest signals through the signed adapter: one order per
symbol that moves, an injected "accepted, then 503" answered by looking the order up (never by
sending it again), the ledger reconciled with the venue.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime

import pytest

from helpers import SAMPLE, airflow_dags_test, write_config

KEY, SECRET = "paperkey01", "papersecret01"


@pytest.mark.slow
def test_paper_trading_trades_the_champion_on_the_replay_testnet(tmp_path):
    from quantlab.context import RunContext
    from quantlab.exchange.replay import OrderFaults, ReplayServer, parse_account
    from quantlab.execution.ledger import Ledger
    from quantlab.lifecycle.retrain import run_graph
    from quantlab.pipeline import STAGES

    end = datetime(2023, 5, 1, tzinfo=UTC)
    settings = {
        "universe": {"end": "2023-05-01"},
        # Both symbols' newest smoothed scores (0.04, 0.14) clear it: the champion buys both.
        "signal": {"threshold": 0.02},
        "train": {"register_as": "quantlab-research"},
        "lifecycle": {"gate": {"min_common_rows": 50}, "regime": {"enabled": False}},
    }
    ctx = RunContext.load(write_config(tmp_path, **settings))
    names = ("ingest", "validate", "exchange_info", "validate_exchange_info", "features", "labels")
    run_graph(ctx, [STAGES[n] for n in (*names, "train", "promote")])

    faults = OrderFaults()
    faults.add("accept_then_503", count=1)
    account = parse_account(f"{KEY}:{SECRET}:USDT=100000")
    with ReplayServer(
        SAMPLE, accounts=[account], order_faults=faults, now_ms=int(end.timestamp() * 1000)
    ) as server:
        paper = {
            "venue": "binance",
            "ledger_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            "binance": {"base_url": server.base_url, "query_backoff_s": 0.05},
        }
        config = write_config(tmp_path, paper=paper, **settings)
        env = {
            "QUANTLAB_CONFIG": str(config),
            "QUANTLAB_BINANCE_API_KEY": KEY,
            "QUANTLAB_BINANCE_API_SECRET": SECRET,
        }
        result = airflow_dags_test(tmp_path / "airflow", "paper_trading", env=env)
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
        with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
            states = dict(db.execute("SELECT task_id, state FROM task_instance").fetchall())
        assert states == dict.fromkeys(
            ("bars", "features", "score_live", "signals", "paper"), "success"
        )
        assert faults.injected  # the 503 was served, after the order was placed
        with Ledger.connect(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
            orders = ledger.orders("paper")
            assert orders and ledger.account_info("paper")["venue"] == "binance"
            assert ledger.check_invariants("paper") == []
            placed = Counter(o.client_id for o in orders)
            assert max(placed.values()) == 1
            assert all(o.status.value in ("FILLED", "NEW") for o in orders), orders
            fills = ledger.fills("paper")
            assert fills.height >= 1 and set(fills["fee_asset"]) <= {"BTC", "ETH", "USDT"}
        # The venue holds each of them exactly once.
        venue = Counter(o.client_id for o in server.trading.book.orders if o.account == KEY)
        assert venue == placed
