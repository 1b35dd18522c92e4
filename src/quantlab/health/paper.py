"""The paper account's health: is it trading, does anything need a person, does the ledger hold.

OK when trading is ACTIVE, nothing waits for a person and the invariants hold; WARN when the
breakers reduce size, a symbol is halted for an unknown order, or there is no account yet;
FAIL when trading is HALTED, a difference needs a person, or an invariant is broken.
"""

from __future__ import annotations

from pathlib import Path

from quantlab.config import PaperConfig
from quantlab.health.result import FAIL, OK, WARN, Result


def check_paper(cfg: PaperConfig) -> Result:
    url = cfg.ledger_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return Result(
            "paper", WARN, "no paper ledger yet; the paper stage creates it on its first run"
        )
    from quantlab.execution.ledger import Ledger

    with Ledger.connect(url) as ledger:
        if ledger.account_info(cfg.account) is None:
            return Result(
                "paper", WARN, f"no paper account {cfg.account!r} yet; `make run` trades one"
            )
        state = ledger.trading_state(cfg.account)
        halts = ledger.halted_symbols(cfg.account)
        person = [e for e in ledger.events(cfg.account, unresolved=True) if e["needs_person"]]
        broken = ledger.check_invariants(cfg.account)
    details = {
        "account": cfg.account,
        "trading": state.mode.value,
        "reason": state.reason,
        "halted_symbols": halts,
        "needs_a_person": [f"{e['kind']}: {e['detail']}" for e in person],
        "invariants": broken,
    }
    if broken:
        return Result("paper", FAIL, f"the ledger breaks its invariants: {broken[0]}", details)
    if state.mode.value == "HALTED" or person:
        why = state.reason or f"{person[0]['kind']} needs a person"
        return Result(
            "paper",
            FAIL,
            f"trading halted: {why} (`quantlab paper status`, then resume/resolve)",
            details,
        )
    if state.mode.value == "REDUCING" or halts:
        why = state.reason or f"halted symbols {sorted(halts)}"
        return Result("paper", WARN, f"trading restricted: {why}", details)
    return Result("paper", OK, f"account {cfg.account} trading, invariants hold", details)
