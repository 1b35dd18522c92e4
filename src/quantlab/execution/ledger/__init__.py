"""The paper ledger (SQLite or PostgreSQL): orders, fills, the cash journal, positions,
breaker state, events, virtual positions and round trips, each write one transaction.

    from quantlab.execution.ledger import Ledger, LedgerBusy, LedgerOrder, PositionRow
"""

from quantlab.execution.ledger.errors import LedgerBusy, LedgerError
from quantlab.execution.ledger.ledger import Ledger
from quantlab.execution.ledger.records import LedgerOrder, PositionRow

__all__ = ["Ledger", "LedgerBusy", "LedgerError", "LedgerOrder", "PositionRow"]
