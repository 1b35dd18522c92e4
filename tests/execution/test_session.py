"""Paper sessions end to end on the paper venue: real bars and filters, SYNTHETIC targets.

What a quant must be able to rely on: a rerun places nothing twice; a process killed between
sending an order and recording it leaves an order reconciliation finds (and nothing is placed
again); an unknown outcome halts only that symbol until it is settled; a storm of injected
faults ends with every intended order placed exactly once and the invariants holding; two
sessions at once never both trade. Each runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from execution.session_support import costs, paper_venue, real_bars, session_inputs
from helpers import ROOT, write_config
from quantlab.config import load_config
from quantlab.execution.ledger import Ledger
from quantlab.execution.stage import trade_once
from quantlab.portfolio.orders import OrderStatus

HERE = Path(__file__).resolve().parent


def _config(tmp_path, **paper):
    return load_config(write_config(tmp_path, paper={"session_bars": 48, **paper}))


def _run(ledger, venue, inputs, config):
    return trade_once(
        ledger, venue, inputs, config, costs(config), "", dict(config.paper.initial_balances)
    )


def test_a_session_trades_the_targets_and_the_ledger_matches_the_venue(tmp_path, ledger_url):
    config = _config(tmp_path)
    bars = real_bars()
    times = bars["open_time"].unique().sort()
    # The last bar is one where the synthetic targets change (every 6th): its orders must wait.
    inputs = session_inputs(bars.filter(pl.col("open_time") <= times[738]))
    venue = paper_venue(tmp_path, inputs, config)
    with Ledger.connect(ledger_url) as ledger:
        out = _run(ledger, venue, inputs, config)
        assert out["invariants"] == []
        assert out["session"].bars == 48 and out["session"].placed
        fills = ledger.fills("paper")
        assert fills.height > 0
        # BUY fees are charged in the base asset, SELL fees in USDT: as Binance charges them.
        assert set(fills.filter(pl.col("side") == "BUY")["fee_asset"]) <= {"BTC", "ETH"}
        assert set(fills.filter(pl.col("side") == "SELL")["fee_asset"]) <= {"USDT"}
        assert out["end"].clear and not out["end"].balance_diffs
        # Dust a buy's base-asset fee leaves after a flatten is flat, not an order to skip.
        assert ledger.events("paper", "order_skipped") == []
        # Every order the ledger holds exists at the venue once, under the same client id.
        venue_ids = Counter(
            o.client_id for o in venue.snapshot(["BTCUSDT", "ETHUSDT"], 0).recent_orders
        )
        ledger_ids = [o.client_id for o in ledger.orders("paper")]
        assert all(venue_ids[c] == 1 for c in ledger_ids)
        # An order decided at the newest close waits for the next bar's open, as in the backtest.
        orders = ledger.orders("paper")
        newest = max(o.decision_ms for o in orders)
        assert {o.status for o in orders if o.decision_ms == newest} == {OrderStatus.NEW}
        assert {o.status for o in orders if o.decision_ms < newest} <= {
            OrderStatus.FILLED,
            OrderStatus.EXPIRED,
        }


def test_an_order_the_exchange_would_refuse_is_skipped_with_its_reason(tmp_path, ledger_url):
    # 20 USDT: ETH's 0.1-0.2 of it is under the real 5 USDT minimum notional; BTC's 0.3 is not.
    config = _config(tmp_path, initial_balances={"USDT": 20.0})
    inputs = session_inputs(real_bars())
    venue = paper_venue(tmp_path, inputs, config)
    with Ledger.connect(ledger_url) as ledger:
        out = _run(ledger, venue, inputs, config)
        skipped = sum(frame.height for frame in out["session"].skipped)
        events = ledger.events("paper", "order_skipped")
        assert len(events) == skipped > 0
        assert {e["symbol"] for e in events} == {"ETHUSDT"}
        assert {e["detail"]["reason"] for e in events} == {"min_notional"}
        assert {o.symbol for o in ledger.orders("paper")} == {"BTCUSDT"}
        assert out["invariants"] == []


def test_a_rerun_places_nothing_twice(tmp_path, ledger_url):
    config = _config(tmp_path)
    inputs = session_inputs(real_bars())
    venue = paper_venue(tmp_path, inputs, config)
    with Ledger.connect(ledger_url) as ledger:
        first = _run(ledger, venue, inputs, config)
        orders = len(ledger.orders("paper"))
        second = _run(ledger, venue, inputs, config)
        assert second["session"].bars == 0 and second["session"].placed == []
        assert len(ledger.orders("paper")) == orders
        assert first["invariants"] == second["invariants"] == []
        # A rerun from a reset cursor (a crash before the cursor moved) re-plans the same bars,
        # finds every key booked and sends nothing.
        venue_before = len(venue.snapshot(["BTCUSDT", "ETHUSDT"], 0).recent_orders)
        ledger.set_cursor("paper", int(inputs.bars["open_time"].dt.epoch("ms").sort()[-10]))
        third = _run(ledger, venue, inputs, config)
        assert third["session"].placed == []
        assert len(venue.snapshot(["BTCUSDT", "ETHUSDT"], 0).recent_orders) == venue_before


_KILLER = """
import os, signal, sys, json
sys.path[:0] = [{tests!r}]
from pathlib import Path
from quantlab.config import load_config
from quantlab.execution.ledger import Ledger
from quantlab.execution import session as sess
from quantlab.execution.stage import trade_once
from execution.session_support import costs, paper_venue, real_bars, session_inputs

config = load_config({config!r})
inputs = session_inputs(real_bars())
venue = paper_venue(Path({tmp!r}), inputs, config)
real_submit = venue.submit
def submit_then_die(intent):
    real_submit(intent)          # the venue has the order ...
    os.kill(os.getpid(), signal.SIGKILL)   # ... and the process dies before the ledger hears
venue.submit = submit_then_die
with Ledger.connect({url!r}) as ledger:
    trade_once(ledger, venue, inputs, config, costs(config), "", dict(config.paper.initial_balances))
"""


def test_kill_9_between_sending_and_recording_places_nothing_twice(tmp_path, ledger_url):
    config_path = write_config(tmp_path, paper={"session_bars": 48})
    config = load_config(config_path)
    script = _KILLER.format(
        tests=str(ROOT / "tests"),
        config=str(config_path),
        tmp=str(tmp_path),
        url=ledger_url,
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    inputs = session_inputs(real_bars())
    venue = paper_venue(tmp_path, inputs, config)
    with Ledger.connect(ledger_url) as ledger:
        (pending,) = ledger.orders("paper")
        assert pending.status is OrderStatus.PENDING_SUBMIT  # booked before it was sent
        out = _run(ledger, venue, inputs, config)
        assert pending.client_id in out["start"].updated  # reconciliation found it at the venue
        assert ledger.order(pending.client_id).status is not OrderStatus.PENDING_SUBMIT
        venue_ids = Counter(
            o.client_id for o in venue.snapshot(["BTCUSDT", "ETHUSDT"], 0).recent_orders
        )
        assert max(venue_ids.values()) == 1  # nothing placed twice
        assert set(venue_ids) <= {o.client_id for o in ledger.orders("paper")}  # none unbooked
        assert out["invariants"] == []


def test_an_unknown_outcome_halts_the_symbol_until_reconciliation_settles_it(tmp_path, ledger_url):
    config = _config(tmp_path)
    inputs = session_inputs(real_bars())
    venue = paper_venue(tmp_path, inputs, config)
    venue.faults = ("lose_reply",)  # the first order is placed, its answer lost
    with Ledger.connect(ledger_url) as ledger:
        out = _run(ledger, venue, inputs, config)
        lost = out["session"].unknown[0]
        order = ledger.order(lost)
        # Found by the end-of-run reconciliation: settled, the halt lifted.
        assert order.status is not OrderStatus.UNKNOWN
        assert lost in out["end"].updated
        assert order.symbol not in ledger.halted_symbols("paper")
        kinds = [e["kind"] for e in ledger.order_events("paper", lost)]
        assert "unknown" in kinds
        assert out["invariants"] == []


def test_a_fault_storm_places_every_order_exactly_once(tmp_path, ledger_url):
    config = _config(tmp_path, missing_checks=4)
    inputs = session_inputs(real_bars(("2023-03", "2023-04")))
    venue = paper_venue(tmp_path, inputs, config)
    venue.fault_rate = 0.35
    times = sorted(set(inputs.bars["open_time"].dt.epoch("ms").to_list()))
    with Ledger.connect(ledger_url) as ledger:
        ledger.ensure_account("paper", "paper", dict(config.paper.initial_balances), times[0])
        ledger.set_cursor("paper", times[-700])
        for end in range(times[-700], times[-1] + 1, 12 * 3_600_000):
            # Each run trades at most 12 bars: many restarts, each reconciling at both ends.
            _run(
                ledger,
                venue,
                session_inputs(inputs.bars.filter(pl.col("open_time").dt.epoch("ms") <= end)),
                config,
            )
        venue.fault_rate = 0.0
        for _ in range(2):  # calm runs: every order lost in the storm is found or settled
            final = _run(ledger, venue, inputs, config)
        assert venue.faults_injected >= 100, venue.faults_injected
        orders = ledger.orders("paper")
        assert len([o for o in orders if o.status is OrderStatus.FILLED]) >= 50  # it traded
        assert not [
            o for o in orders if o.status in (OrderStatus.UNKNOWN, OrderStatus.PENDING_SUBMIT)
        ]
        venue_ids = Counter(
            o.client_id for o in venue.snapshot(["BTCUSDT", "ETHUSDT"], 0).recent_orders
        )
        assert max(venue_ids.values()) == 1
        # One placed order per intended (symbol, decision bar): a lost one was settled as never
        # placed before its next attempt was sent.
        placed = Counter((o.symbol, o.decision_ms) for o in orders if o.client_id in venue_ids)
        assert max(placed.values()) == 1
        assert final["invariants"] == [] and final["end"].clear, final["end"].lines()
        assert not final["end"].balance_diffs


def test_two_sessions_at_once_never_both_trade(tmp_path, ledger_url):
    from quantlab.errors import LedgerBusy

    with Ledger.connect(ledger_url) as one, Ledger.connect(ledger_url) as two:
        with (
            one.session_lock("paper", 0.0),
            pytest.raises(LedgerBusy, match="another paper"),
            two.session_lock("paper", 0.2),
        ):
            pass
        with two.session_lock("paper", 0.0):
            pass  # free again once the first session ended
