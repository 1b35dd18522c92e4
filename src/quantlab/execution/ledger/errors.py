"""The ledger's errors live in quantlab's one tree (`quantlab.errors`); re-exported here.

QuantlabError
└── LedgerError        the ledger refused a write that would corrupt it (an overfill, an
    │                  unknown order, a schema newer than this code); nothing was written
    └── LedgerBusy     another paper run for the same account holds the ledger
"""

from __future__ import annotations

from quantlab.errors import LedgerBusy, LedgerError

__all__ = ["LedgerBusy", "LedgerError"]
