"""Data-quality checks: pure functions from a frame to a `ValidationReport`, run through Great Expectations."""

from quantlab.quality.klines import CheckResult, ValidationReport, validate_klines

__all__ = ["CheckResult", "ValidationReport", "validate_klines"]
