"""The execution tests' shared fixtures: an empty ledger's URL (SQLite, then PostgreSQL)."""

from execution.test_ledger_support import ledger, ledger_url  # noqa: F401  (fixtures)
