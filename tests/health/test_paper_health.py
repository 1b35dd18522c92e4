"""`quantlab health`'s paper check: trading state, differences that need a person, invariants."""

from __future__ import annotations

import dataclasses

from quantlab.config import PaperConfig
from quantlab.execution.ledger import Ledger
from quantlab.health.paper import check_paper
from quantlab.health.result import FAIL, OK, WARN
from quantlab.portfolio.orders import TradingMode


def test_the_paper_check_follows_the_account(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    cfg = PaperConfig(ledger_url=url)
    assert check_paper(cfg).status == WARN  # no ledger yet: nothing created by looking
    assert not (tmp_path / "ledger.sqlite").exists()
    with Ledger.connect(url) as ledger:
        assert check_paper(cfg).status == WARN  # no account yet
        ledger.ensure_account("paper", "paper", {"USDT": 1000.0}, 0)
        assert check_paper(cfg).status == OK
        state = ledger.trading_state("paper")
        reducing = dataclasses.replace(state, mode=TradingMode.REDUCING, reason="drawdown 12%")
        ledger.set_trading_state("paper", reducing, 1, "breakers")
        got = check_paper(cfg)
        assert got.status == WARN and "drawdown 12%" in got.reason
        halted = dataclasses.replace(state, mode=TradingMode.HALTED, reason="daily loss 6%")
        ledger.set_trading_state("paper", halted, 2, "breakers")
        got = check_paper(cfg)
        assert got.status == FAIL and "daily loss 6%" in got.reason
        ledger.set_trading_state("paper", state, 3, "person")
        ledger.add_event("paper", "balance_mismatch", {"asset": "USDT"}, 4, needs_person=True)
        assert check_paper(cfg).status == FAIL
        ledger.resolve_events("paper", 5, "person")
        assert check_paper(cfg).status == OK
