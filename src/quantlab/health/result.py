"""One check's verdict, and how verdicts combine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantlab.errors import QuantlabError

OK, WARN, FAIL = "OK", "WARN", "FAIL"
_RANK = {OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # OK | WARN | FAIL
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "details": self.details,
        }


def worst(results: list[Result]) -> str:
    """FAIL if any failed, else WARN if any warned, else OK."""
    return max((r.status for r in results), key=_RANK.__getitem__, default=OK)


class Unhealthy(QuantlabError):
    """A health check failed; the message lists each failure and what to do."""
