"""The ledger's errors, under quantlab's one tree (QuantlabError).

QuantlabError
└── LedgerError        the ledger refused a write that would corrupt it (an overfill, an
    │                  unknown order, a schema newer than this code); nothing was written
    └── LedgerBusy     another paper run for the same account holds the ledger
"""

from __future__ import annotations

from quantlab.errors import QuantlabError


class LedgerError(QuantlabError):
    """A ledger write was refused and rolled back; the message says why and what to do."""


class LedgerBusy(LedgerError):
    """Another process (or thread) holds the account's session lock past the wait."""
