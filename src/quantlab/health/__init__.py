"""`quantlab health`: is every component this platform runs on working, each with a verdict.

Each check returns a `Result` (name, OK | WARN | FAIL, a reason that says what to do, and
details). `run_checks` runs them all; `require_healthy` is what an Airflow task calls: it
logs every result and raises `Unhealthy` on any FAIL.
"""

from quantlab.health.result import FAIL, OK, WARN, Result, Unhealthy, worst
from quantlab.health.run import CHECKS, require_healthy, run_checks

__all__ = [
    "CHECKS",
    "FAIL",
    "OK",
    "WARN",
    "Result",
    "Unhealthy",
    "require_healthy",
    "run_checks",
    "worst",
]
