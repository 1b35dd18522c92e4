"""Every health check, in order, and the verdict an Airflow task acts on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quantlab.health.data import check_catalog, check_freshness, check_gate
from quantlab.health.paper import check_paper
from quantlab.health.result import FAIL, OK, WARN, Result, Unhealthy, worst
from quantlab.health.services import check_champions, check_ledger, check_mlflow

if TYPE_CHECKING:
    from quantlab.context import RunContext

log = logging.getLogger(__name__)

CHECKS: dict[str, Callable[[RunContext, datetime], Result]] = {
    "catalog": lambda ctx, now: check_catalog(ctx.catalog),
    "klines_freshness": lambda ctx, now: check_freshness(ctx.catalog, ctx.config, now),
    "gate": lambda ctx, now: check_gate(ctx.catalog),
    "mlflow": lambda ctx, now: check_mlflow(ctx.config.tracking.uri),
    "champions": lambda ctx, now: check_champions(ctx.config),
    "ledger": lambda ctx, now: check_ledger(ctx.config.paper.ledger_url),
    "paper": lambda ctx, now: check_paper(ctx.config.paper),
}


def run_checks(ctx: RunContext, now: datetime | None = None) -> list[Result]:
    """Every check's result. A check that raises is reported as its own FAIL, not as a crash
    of the whole report: the point of `health` is to say which component is broken."""
    now = now or datetime.now(UTC)
    out = []
    for name, check in CHECKS.items():
        try:
            out.append(check(ctx, now))
        except Exception as exc:  # reported as the check's FAIL, with the error
            out.append(Result(name, FAIL, f"the check raised {type(exc).__name__}: {exc}"))
    return out


def report(results: list[Result]) -> dict[str, Any]:
    return {"status": worst(results), "checks": [r.to_dict() for r in results]}


def require_healthy(ctx: RunContext, now: datetime | None = None) -> dict[str, Any]:
    """Run the checks, log each (WARN as a warning); raise Unhealthy on any FAIL."""
    results = run_checks(ctx, now)
    for r in results:
        level = {OK: logging.INFO, WARN: logging.WARNING, FAIL: logging.ERROR}[r.status]
        log.log(level, "%s %s: %s", r.status, r.name, r.reason)
    failed = [r for r in results if r.status == FAIL]
    if failed:
        raise Unhealthy(
            "health check failed:\n" + "\n".join(f"{r.name}: {r.reason}" for r in failed)
        )
    return report(results)
