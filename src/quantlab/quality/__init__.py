"""Stage `quality`: the gate between ingest and everything downstream.

One word per idea: a *check* is one expectation on a frame (`CheckResult`), gathered in
a `CheckReport` by the suites `check_klines`, `check_funding_rates` and
`check_exchange_info` (pure, run through Great Expectations); the *gate* (`stage.run`,
`check_version`) runs them on a catalog version and records `<name>_checks`;
`require_passed` and `load_bars` (the read side) let downstream stages read only data
that passed. `docs` builds the Data Docs site, `files` reads a klines file a user brings.
"""

from quantlab.quality.checks import CheckReport, CheckResult, Severity
from quantlab.quality.exchange_info import check_exchange_info
from quantlab.quality.funding_rates import check_funding_rates
from quantlab.quality.gate import require_passed
from quantlab.quality.klines import check_klines
from quantlab.quality.outages import Outage, load_outages
from quantlab.quality.read import load_bars, load_mark
from quantlab.quality.stage import GateResult, check_version, run

__all__ = [
    "CheckReport",
    "CheckResult",
    "GateResult",
    "Outage",
    "Severity",
    "check_exchange_info",
    "check_funding_rates",
    "check_klines",
    "check_version",
    "load_bars",
    "load_mark",
    "load_outages",
    "require_passed",
    "run",
]
