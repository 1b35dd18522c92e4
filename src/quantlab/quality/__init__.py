"""Data-quality checks: pure functions from a frame to a `ValidationReport`, run through Great Expectations.

`validate_klines`, `validate_funding_rates` and `validate_exchange_info` are the suites;
`quality.stage` (the gate) runs them on catalog versions and `gate.require_passed` guards the
stages downstream. `docs` builds the Data Docs site, `files` reads a klines file a user brings.
"""

from quantlab.quality.checks import CheckResult, Severity, ValidationReport
from quantlab.quality.exchange_info import validate_exchange_info
from quantlab.quality.funding_rates import validate_funding_rates
from quantlab.quality.gate import require_passed
from quantlab.quality.klines import validate_klines
from quantlab.quality.outages import Outage, load_outages
from quantlab.quality.read import load_bars
from quantlab.quality.stage import GateResult, check_version, run

__all__ = [
    "CheckResult",
    "GateResult",
    "Outage",
    "Severity",
    "ValidationReport",
    "check_version",
    "load_bars",
    "load_outages",
    "require_passed",
    "run",
    "validate_exchange_info",
    "validate_funding_rates",
    "validate_klines",
]
