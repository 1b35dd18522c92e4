"""The paper-execution bridge: targets → orders → a venue (the paper venue or Binance's spot
testnet through the signed adapter) → fills → the ledger → reconciliation.

`run` (in `stage`) is the research pipeline's `paper` stage and the `paper_trading` DAG's last
task; it is imported on first use, so the vocabulary (`types`) imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from quantlab.execution.stage import run

        return run
    raise AttributeError(f"module 'quantlab.execution' has no attribute {name!r}")
