"""Data-quality checks: pure functions from a frame to a `ValidationReport`, run through Great Expectations.

`validate_klines`, `validate_funding_rates` and `validate_exchange_info` are the suites;
`quantlab.validate` runs them on catalog versions and `gate.require_passed` guards the
stages downstream. `docs` builds the Data Docs site, `files` reads a klines file a user brings.
"""

from quantlab.quality.exchange_info import validate_exchange_info
from quantlab.quality.funding_rates import validate_funding_rates
from quantlab.quality.klines import validate_klines
from quantlab.quality.outages import Outage, load_outages
from quantlab.quality.report import CheckResult, Severity, ValidationReport

__all__ = [
    "CheckResult",
    "Outage",
    "Severity",
    "ValidationReport",
    "load_outages",
    "validate_exchange_info",
    "validate_funding_rates",
    "validate_klines",
]
